"""Live previews (backends/previews.py and the inpainter's step callback): pictures of the crop
every N steps, from a tiny autoencoder or from the linear latent-to-RGB map."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from promptpaint.backends.previews import LINEAR_FACTORS, LinearPreview, load_previewer, to_uint8
from promptpaint.backends.registry import resolve


@pytest.mark.parametrize("family, latent, expected", [
    # channel 0 alone: its row of factors, (x + 1) * 127.5 rounded
    ("sd-inpaint", [1, 0, 0, 0], [172, 157, 169]),  # (0.3512, 0.2297, 0.3227)
    ("sd-inpaint", [0, 0, 0, 2], [73, 61, 0]),  # 2 * (-0.2120, -0.2616, -0.7177): the last is clipped at -1
    ("sdxl-inpaint", [1, 0, 0, 0], [188, 179, 183]),  # (0.3651, 0.4232, 0.4341) + bias (0.1084, -0.0175, -0.0011)
    ("flux-fill", [0] * 16, [123, 118, 117]),  # the bias alone: (-0.0329, -0.0718, -0.0851)
])
def test_linear_preview_maps_a_known_latent_to_its_colour(family, latent, expected):
    preview = LinearPreview(family)
    latents = torch.tensor(latent, dtype=torch.float32).reshape(1, -1, 1, 1).expand(2, -1, 3, 5)
    picture = preview(latents, (40, 24))  # a 5x3 latent, shown at the crop's 40x24
    assert picture.shape == (24, 40, 3) and picture.dtype == np.uint8
    assert (picture == np.array(expected, np.uint8)).all()


def test_to_uint8_is_comfyui_mapping():
    assert to_uint8(np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])).tolist() == [0, 0, 128, 191, 255, 255]


def test_linear_factors_match_the_latent_channels():
    assert {family: len(rows) for family, (rows, _) in LINEAR_FACTORS.items()} == \
        {"sd-inpaint": 4, "sdxl-inpaint": 4, "flux-fill": 16}


def test_no_preview_decoder_for_latents_nothing_fits():
    assert load_previewer("flux-fill", 4, "cpu", torch.float32) is None  # the kit's FLUX VAE has 4 channels
    assert isinstance(load_previewer("sd-inpaint", 4, "cpu", torch.float32), LinearPreview)  # taesd not cached


def _inpainter(tiny, family):
    from promptpaint.backends.inpainters import load_inpainter

    return load_inpainter(resolve(str(tiny[family])), "cpu", "auto")


def _run(model, size, steps, previews):
    w, h = size
    image = np.random.default_rng(1).integers(0, 256, (h, w, 3), np.uint8)
    mask = np.zeros((h, w), bool)
    mask[h // 4:, : w // 2] = True
    events = []

    def progress(step, total, **extra):
        events.append((step, total, extra.get("preview")))

    out = model.inpaint([image], mask, prompt="a cat", negative_prompt="", seeds=[5], steps=steps, guidance=None,
                        progress=progress, previews=previews)[0]
    return out, events


@pytest.mark.parametrize("family", ["sd-inpaint", "flux-fill"])
def test_previews_have_the_crops_size_and_arrive_every_n_steps(tiny, family):
    model = _inpainter(tiny, family)
    model.use_preview_decoder(str(tiny["taesd"]))  # the kit's TAESD (4-channel latents, as the kit's models)
    try:
        size = (96, 64) if family == "sd-inpaint" else (64, 32)
        out, events = _run(model, size, steps=5, previews=2)
    finally:
        model.use_preview_decoder(None)
    assert [(step, total) for step, total, _ in events] == [(i, 5) for i in range(1, 6)]
    shown = {step: picture for step, _, picture in events if picture is not None}
    assert sorted(shown) == [2, 4, 5]  # every 2 steps, and the last
    for picture in shown.values():
        assert picture.shape == (size[1], size[0], 3) and picture.dtype == np.uint8
    assert shown[2].std() > 0 and not np.array_equal(shown[2], shown[4])


def test_previews_only_when_asked_and_they_do_not_change_the_result(tiny):
    model = _inpainter(tiny, "sd-inpaint")
    plain, events = _run(model, (64, 64), steps=3, previews=0)
    assert all(picture is None for _, _, picture in events)
    with_previews, events = _run(model, (64, 64), steps=3, previews=1)
    assert all(picture is not None for _, _, picture in events)  # the linear map: taesd is not cached
    assert np.array_equal(plain, with_previews)
    # a two-argument progress callback still works when no previews are asked for
    model.inpaint([plain], np.ones((64, 64), bool), prompt="a cat", negative_prompt="", seeds=[1], steps=2,
                  guidance=None, progress=lambda step, total: None)
