"""Crop-and-stitch with a fake model: it paints solid colours and records what it was given, so
the window plan, the working sizes, the untouched pixels and the blend ramps can be checked exactly."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.core import masks as M
from promptpaint.core.geometry import Window
from promptpaint.pipeline.batching import drive
from promptpaint.pipeline.stitch import StitchSettings, WindowJob, job_size, plan_windows, resize_image, stitch_steps


def stitch(images, weights, generate, settings):
    """Crop-and-stitch driven by a plain function ``generate(crops, mask) -> repainted crops``."""
    return drive(stitch_steps(images, weights, settings), lambda request: generate(*request))


class FakeModel:
    """A `generate` callable: returns solid images (one colour per call) and records its inputs."""

    def __init__(self, colours=(200,)):
        self.colours = list(colours)
        self.calls: list[tuple[list[np.ndarray], np.ndarray]] = []

    def __call__(self, crops, mask):
        colour = self.colours[len(self.calls) % len(self.colours)]
        self.calls.append(([c.copy() for c in crops], mask.copy()))
        return [np.full_like(c, colour) for c in crops]

    @property
    def sizes(self):
        return [(crops[0].shape[1], crops[0].shape[0]) for crops, _ in self.calls]


def noise(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def square(shape, x0, y0, side):
    mask = np.zeros(shape, bool)
    mask[y0:y0 + side, x0:x0 + side] = True
    return mask


# ---------------------------------------------------------------- planning


def test_small_mask_in_a_big_image_is_generated_at_the_working_size():
    image = noise(1500, 2000)
    mask = square((1500, 2000), 1000, 700, 60)
    model = FakeModel()
    (out,), jobs = stitch([image], M.feather(mask, 6), model, StitchSettings(working_size=512))
    # 60 px + 30 px padding a side = 120, grown to min_side 256 around the mask, then enlarged to 512
    assert jobs == [WindowJob(Window(902, 602, 1158, 858), (512, 512))]
    assert model.sizes == [(512, 512)]
    crops, crop_mask = model.calls[0]
    np.testing.assert_array_equal(crops[0], resize_image(image[602:858, 902:1158], (512, 512)))
    assert crop_mask.shape == (512, 512) and crop_mask.dtype == bool
    # the mask the model sees is the edit area (window pixels 92..164: 60 px + 6 px feather a side)
    # scaled 2x
    assert M.mask_bbox(crop_mask) == Window(184, 184, 328, 328)


def test_far_apart_regions_get_their_own_windows_close_ones_share():
    settings = StitchSettings(working_size=512)
    far = square((1500, 2000), 100, 100, 60) | square((1500, 2000), 1500, 1000, 60)
    assert plan_windows(far, settings) == [Window(2, 2, 258, 258), Window(1402, 902, 1658, 1158)]
    close = square((1500, 2000), 100, 100, 60) | square((1500, 2000), 220, 100, 60)
    assert plan_windows(close, settings) == [Window(2, 2, 378, 258)]


def test_two_regions_two_model_calls_at_working_size():
    image = noise(1500, 2000)
    mask = square((1500, 2000), 100, 100, 60) | square((1500, 2000), 1500, 1000, 60)
    model = FakeModel(colours=(10, 240))
    (out,), jobs = stitch([image], mask.astype(np.float32), model, StitchSettings(working_size=512))
    assert [job.window for job in jobs] == [Window(2, 2, 258, 258), Window(1402, 902, 1658, 1158)]
    assert model.sizes == [(512, 512), (512, 512)]
    assert (out[100:160, 100:160] == 10).all() and (out[1000:1060, 1500:1560] == 240).all()
    np.testing.assert_array_equal(out[~mask], image[~mask])


def test_removers_work_at_the_crops_own_resolution():
    settings = StitchSettings(working_size=512, upscale=False)
    assert settings.min_side() == 0
    mask = square((1500, 2000), 100, 100, 60)
    # no minimum side: just the 30 px padding
    assert plan_windows(mask, settings) == [Window(70, 70, 190, 190)]


def test_a_model_that_declares_a_minimum_context_gets_it():
    """LaMa (min_context 256) sees a small hole with 256 px around it, not 30 px of border."""
    settings = StitchSettings(working_size=1024, upscale=False, min_context=256)
    assert settings.min_side() == 256
    mask = square((1500, 2000), 100, 100, 60)
    assert plan_windows(mask, settings) == [Window(2, 2, 258, 258)]
    near_edge = square((300, 2000), 5, 5, 20)  # the window stays inside the image
    assert plan_windows(near_edge, settings) == [Window(0, 0, 256, 256)]
    assert StitchSettings(working_size=512, min_context=128).min_side() == 256  # the larger rule wins


@pytest.mark.parametrize("window, settings, expected", [
    (Window(0, 0, 256, 256), StitchSettings(512), (512, 512)),
    (Window(0, 0, 2000, 1000), StitchSettings(512), (728, 360)),
    (Window(0, 0, 1000, 1000), StitchSettings(1024, multiple=64), (1024, 1024)),
    # removers: never enlarged, only large crops shrunk to the working size
    (Window(0, 0, 200, 120), StitchSettings(512, upscale=False), (200, 120)),
    (Window(0, 0, 1000, 500), StitchSettings(512, upscale=False), (512, 256)),
    (Window(0, 0, 3000, 100), StitchSettings(1024, upscale=False), (1024, 32)),
    (Window(5, 5, 8, 8), StitchSettings(512, upscale=False), (8, 8)),
])
def test_job_size(window, settings, expected):
    assert job_size(window, settings) == expected


# ---------------------------------------------------------------- untouched pixels and blending


def test_pixels_with_weight_0_are_byte_identical():
    image = noise(120, 160, seed=1)
    weights = M.feather(square((120, 160), 50, 40, 20) | square((120, 160), 120, 90, 10), 5)
    model = FakeModel(colours=(0, 255))
    out, jobs = stitch([image, image.copy()], weights, model, StitchSettings(working_size=64))
    assert len(jobs) >= 1
    for variant in out:
        np.testing.assert_array_equal(variant[weights == 0], image[weights == 0])
        assert not np.array_equal(variant[weights > 0], image[weights > 0])


def test_blend_weights_give_exact_values():
    image = np.full((40, 40, 3), 100, np.uint8)
    weights = np.zeros((40, 40), np.float32)
    weights[10:20, 10:20] = 1.0
    weights[10:20, 20:22] = 0.5
    weights[10:20, 22:23] = 0.25
    (out,), _ = stitch([image], weights, FakeModel(colours=(200,)), StitchSettings(working_size=64))
    assert (out[10:20, 10:20] == 200).all()
    assert (out[10:20, 20:22] == 150).all()
    assert (out[10:20, 22] == 125).all()
    np.testing.assert_array_equal(out[weights == 0], image[weights == 0])


def test_every_variant_gets_its_own_result():
    image = noise(50, 50)
    calls = []

    def per_variant(crops, mask):
        calls.append(len(crops))
        return [np.full_like(c, 30 * (i + 1)) for i, c in enumerate(crops)]

    mask = square((50, 50), 20, 20, 5).astype(np.float32)
    out, _ = stitch([image, image, image], mask, per_variant, StitchSettings(working_size=64))
    assert calls == [3]
    assert [int(v[22, 22, 0]) for v in out] == [30, 60, 90]


def test_nothing_to_edit_calls_no_model_and_returns_copies():
    image = noise(30, 30)
    model = FakeModel()
    out, jobs = stitch([image], np.zeros((30, 30), np.float32), model, StitchSettings(working_size=64))
    assert jobs == [] and model.calls == []
    np.testing.assert_array_equal(out[0], image)
    assert out[0] is not image


# ---------------------------------------------------------------- tiles


def test_large_region_is_split_into_overlapping_tiles_that_cover_it():
    h, w = 500, 700
    image = noise(h, w, seed=2)
    mask = np.zeros((h, w), bool)
    mask[40:460, 60:650] = True
    weights = M.feather(mask, 4)
    settings = StitchSettings(working_size=128)  # tiles of at most 2 * 128 = 256 px, overlap 16
    model = FakeModel(colours=(250,))
    (out,), jobs = stitch([image], weights, model, settings)
    windows = [job.window for job in jobs]
    assert len(windows) > 1
    assert all(win.width <= 256 and win.height <= 256 for win in windows)
    assert all(job.model_size == job_size(job.window, settings) for job in jobs)
    covered = np.zeros((h, w), bool)
    for win in windows:
        covered[win.slices] = True
    assert covered[weights > 0].all()
    # neighbouring tiles overlap by at least the tile overlap
    xs = sorted({(win.x0, win.x1) for win in windows})
    assert all(a[1] - b[0] >= 16 for a, b in zip(xs, xs[1:]))
    # every fully weighted pixel was generated, nothing outside the edit moved
    assert (out[weights == 1] == 250).all()
    np.testing.assert_array_equal(out[weights == 0], image[weights == 0])


def test_tile_seams_are_blended_with_the_documented_ramp():
    # A 300 px strip, tiles of 128 px (working 64 x max_downscale 2), overlap 8:
    # tiles start at 0, 86 and 172. Each later tile repaints an 8 px band of the pixels already
    # filled with weight 1 - d / 9, d the distance to its fresh pixels.
    image = np.zeros((64, 300, 3), np.uint8)
    weights = np.ones((64, 300), np.float32)
    model = FakeModel(colours=(40, 220, 130))
    (out,), jobs = stitch([image], weights, model, StitchSettings(working_size=64, upscale=False))
    assert [job.window for job in jobs] == [Window(0, 0, 128, 64), Window(86, 0, 214, 64), Window(172, 0, 300, 64)]
    assert [job.model_size for job in jobs] == [(64, 32)] * 3
    row = out[0, :, 0].astype(int)
    assert (out[..., 0] == out[:1, :, 0]).all() and (out == out[..., :1]).all()
    assert (row[:120] == 40).all()
    # x = 120 .. 127: d = 8 .. 1, weight 1/9 .. 8/9 of 220 over 40
    assert row[120:128].tolist() == [60, 80, 100, 120, 140, 160, 180, 200]
    assert (row[128:206] == 220).all()
    # x = 206 .. 213: weight 1/9 .. 8/9 of 130 over 220
    assert row[206:214].tolist() == [210, 200, 190, 180, 170, 160, 150, 140]
    assert (row[214:] == 130).all()
    # the second model call sees the band and its fresh pixels: 8 + 86 of its 128 columns
    _, second_mask = model.calls[1]
    assert second_mask.shape == (32, 64)
    assert second_mask.all(axis=0).sum() == round((8 + 86) / 2)
