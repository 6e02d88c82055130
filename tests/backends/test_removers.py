"""The removers: LaMa with both kinds of ONNX export (fixed input size, Carve/LaMa-ONNX's 512x512,
here a tiny 64x64 twin; dynamic sides, the kit's default tiny LaMa), against its failure modes with
real exports and against a direct onnxruntime call with each export interface's documented input
and output.

The oracle exports here are written with ``torch.onnx.export``: they fill the hole with the mean
colour of the known pixels, as a real LaMa does on a flat background, so "the fill stays dark"
means something."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from promptpaint.backends.registry import resolve
from promptpaint.backends.removers import LamaRemover, fixed_input_size, pad_to_aspect
from promptpaint.pipeline.pipeline import Pipeline
from promptpaint.testing.tiny_models import build_lama

FIXED = 64


@pytest.fixture(scope="module")
def fixed_lama(tmp_path_factory):
    return build_lama(tmp_path_factory.mktemp("lama-fixed"), fixed_size=FIXED)


def wide_hole(shape: tuple[int, int]) -> np.ndarray:
    """A hole far wider than tall, so that the crop around it is not square."""
    mask = np.zeros(shape, bool)
    mask[120:150, 100:300] = True
    return mask


def remove(folder, image, mask):
    return Pipeline(remover=str(folder), device="cpu").remove(image, mask=mask, seed=0)


def test_fixed_size_export_is_detected(fixed_lama, tiny):
    fixed = Pipeline(remover=str(fixed_lama), device="cpu").remover()
    assert fixed.fixed_size == (FIXED, FIXED) and fixed.two_inputs
    dynamic = Pipeline(remover=str(tiny["lama"]), device="cpu").remover()
    assert dynamic.fixed_size is None and not dynamic.two_inputs


@pytest.mark.parametrize(("shape", "expected"), [
    ([1, 3, 512, 512], (512, 512)),
    ([1, 3, 512, 768], (768, 512)),
    ([1, 4, "height", "width"], None),
    ([1, 3, None, None], None),
    ([1, 3, 512, "width"], None),
    (["batch", 3], None),
])
def test_fixed_input_size(shape, expected):
    assert fixed_input_size(shape) == expected


def test_fixed_size_remove_on_a_non_square_crop(fixed_lama, cat_rgb):
    mask = wide_hole(cat_rgb.shape[:2])
    result = remove(fixed_lama, cat_rgb, mask)
    assert result.image.shape == cat_rgb.shape and result.image.dtype == np.uint8
    (job,) = result.windows
    assert job.model_size[0] > job.model_size[1] > FIXED  # a crop neither square nor at the model's size
    outside = ~result.mask
    np.testing.assert_array_equal(result.image[outside], cat_rgb[outside])
    assert (result.image[mask] != cat_rgb[mask]).any()  # the hole was filled


def test_fixed_size_remover_returns_the_crop_size(fixed_lama):
    remover = Pipeline(remover=str(fixed_lama), device="cpu").remover()
    crop = np.random.default_rng(0).integers(0, 256, (96, 160, 3), np.uint8)
    hole = np.zeros((96, 160), bool)
    hole[30:60, 40:120] = True
    (filled,) = remover.inpaint([crop], hole)
    assert filled.shape == crop.shape and filled.dtype == np.uint8
    assert (filled[hole] != crop[hole]).any()


def test_fixed_size_remove_is_deterministic(fixed_lama, cat_rgb):
    mask = wide_hole(cat_rgb.shape[:2])
    first, second = remove(fixed_lama, cat_rgb, mask), remove(fixed_lama, cat_rgb, mask)
    np.testing.assert_array_equal(first.image, second.image)


def test_dynamic_export_runs_at_the_crop_size(tiny, cat_rgb):
    mask = wide_hole(cat_rgb.shape[:2])
    result = remove(tiny["lama"], cat_rgb, mask)
    (job,) = result.windows
    # its own resolution (snapped to LaMa's multiple of 32), no fixed size in between
    assert job.model_size == tuple(max(32, round(side / 32) * 32) for side in job.window.size)
    assert max(job.model_size) > FIXED
    outside = ~result.mask
    np.testing.assert_array_equal(result.image[outside], cat_rgb[outside])
    assert (result.image[mask] != cat_rgb[mask]).any()


def test_a_small_hole_gets_at_least_256_pixels_of_context(tiny, cat_rgb):
    """LaMa was trained on 256 px crops: a 20 px hole is filled from a 256 px window around it."""
    mask = np.zeros(cat_rgb.shape[:2], bool)
    mask[140:160, 200:220] = True
    remover = Pipeline(remover=str(tiny["lama"]), device="cpu").remover()
    assert remover.min_context == 256
    result = remove(tiny["lama"], cat_rgb, mask)
    (job,) = result.windows
    assert min(job.window.size) >= 256 and job.window.x0 <= 200 - 100 and job.window.y0 <= 140 - 100
    np.testing.assert_array_equal(result.image[~result.mask], cat_rgb[~result.mask])


# ------------------------------------------------------------------ oracles

def export_mean_fill(folder, *, fixed: int | None, scale: float):
    """An ONNX LaMa twin that fills the hole with the mean of the known pixels and returns the
    image composited, times ``scale``. ``fixed``: Carve's interface (image, mask at a fixed size);
    None: g-ronimo's (one [1, 4, H, W] input, dynamic sides)."""
    import torch

    class MeanFill(torch.nn.Module):
        def forward(self, image, mask):
            known = 1 - mask
            mean = (image * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp(min=1)
            return (image * known + mean * mask) * scale

    class OneInput(torch.nn.Module):
        def forward(self, masked_and_mask):
            return MeanFill()(masked_and_mask[:, :3], masked_and_mask[:, 3:])

    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / "lama.onnx")
    if fixed:
        args = (torch.rand(1, 3, fixed, fixed), torch.zeros(1, 1, fixed, fixed))
        torch.onnx.export(MeanFill(), args, path, input_names=["image", "mask"], output_names=["output"],
                          dynamo=False)
    else:
        torch.onnx.export(OneInput(), (torch.rand(1, 4, 64, 64),), path, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {2: "height", 3: "width"}},
                          dynamo=False)
    return folder


@pytest.fixture(scope="module")
def mean_fill_255(tmp_path_factory):
    """Carve/LaMa-ONNX's ``lama_fp32.onnx`` as it behaves: fixed size, output in 0..255."""
    return export_mean_fill(tmp_path_factory.mktemp("carve-like"), fixed=FIXED, scale=255.0)


def load(folder) -> LamaRemover:
    return LamaRemover(resolve(str(folder)), "cpu")


# ------------------------------------------------------------------ output scale, once per export

@pytest.mark.parametrize(("kind", "expected"), [("kit-dynamic", 1.0), ("kit-fixed", 255.0),
                                                ("mean-fill-255", 255.0), ("mean-fill-dynamic-255", 255.0),
                                                ("mean-fill-dynamic-1", 1.0)])
def test_output_scale_is_measured_at_load(kind, expected, tiny, fixed_lama, mean_fill_255, tmp_path):
    folders = {"kit-dynamic": lambda: tiny["lama"], "kit-fixed": lambda: fixed_lama,
               "mean-fill-255": lambda: mean_fill_255,
               "mean-fill-dynamic-255": lambda: export_mean_fill(tmp_path, fixed=None, scale=255.0),
               "mean-fill-dynamic-1": lambda: export_mean_fill(tmp_path, fixed=None, scale=1.0)}
    assert load(folders[kind]()).output_scale == expected


def test_a_dark_crop_from_a_0_255_export_stays_dark(mean_fill_255):
    """A crop whose every value is 0 or 1 looked like a 0..1 output and came back white."""
    remover = load(mean_fill_255)
    crop = np.random.default_rng(0).integers(0, 2, (FIXED, FIXED, 3), np.uint8)
    hole = np.zeros((FIXED, FIXED), bool)
    hole[20:40, 20:40] = True
    (filled,) = remover.inpaint([crop], hole)
    assert filled.max() <= 1
    np.testing.assert_array_equal(filled[~hole], crop[~hole])


def test_removing_from_a_near_black_photo_keeps_the_fill_dark(mean_fill_255):
    """A night sky (values 0 and 1) with an object removed: the hole is filled dark, not white."""
    photo = np.random.default_rng(1).integers(0, 2, (300, 400, 3), np.uint8)
    hole = np.zeros((300, 400), bool)
    hole[120:170, 150:230] = True
    result = Pipeline(remover=str(mean_fill_255), device="cpu").remove(photo, mask=hole, seed=0)
    assert result.image.max() <= 2  # resizing back may overshoot by one level, never to white
    np.testing.assert_array_equal(result.image[~result.mask], photo[~result.mask])


# ------------------------------------------------------------------ fixed-size exports: pad, don't squash

def test_pad_to_aspect_reflects_the_borders():
    image = np.arange(2 * 4 * 3, dtype=np.uint8).reshape(2, 4, 3)
    mask = np.zeros((2, 4), bool)
    mask[1, 2] = True
    padded, padded_mask, inside = pad_to_aspect(image, mask, (8, 8))  # 2x4 -> 4x4, one row each side
    assert padded.shape == (4, 4, 3) and inside == (slice(1, 3), slice(0, 4))
    np.testing.assert_array_equal(padded[inside], image)
    np.testing.assert_array_equal(padded[0], image[1])  # reflected, edge not repeated
    np.testing.assert_array_equal(padded[3], image[0])
    np.testing.assert_array_equal(padded_mask, [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize(("shape", "size", "padded_shape"), [
    ((30, 60), (64, 64), (60, 60)),  # flat: taller
    ((90, 30), (64, 64), (90, 90)),  # narrow: wider
    ((32, 64), (128, 64), (32, 64)),  # already the export's aspect
    ((1, 7), (64, 64), (7, 7)),  # a one-pixel row still pads (edge mode)
])
def test_pad_to_aspect_reaches_the_exports_aspect(shape, size, padded_shape):
    padded, padded_mask, inside = pad_to_aspect(np.zeros((*shape, 3), np.uint8), np.ones(shape, bool), size)
    assert padded.shape[:2] == padded_shape and padded_mask.sum() == shape[0] * shape[1]
    assert padded_mask[inside].all()


def test_a_crop_of_the_exports_height_and_half_its_width_is_not_squashed(mean_fill_255):
    """Padded to the export's square it needs no resizing: the known pixels come back exact.
    Squashed to the square and back, every pixel of a textured crop would change."""
    remover = load(mean_fill_255)
    crop = np.random.default_rng(2).integers(0, 256, (FIXED, FIXED // 2, 3), np.uint8)
    hole = np.zeros(crop.shape[:2], bool)
    hole[20:40, 10:20] = True
    (filled,) = remover.inpaint([crop], hole)
    assert filled.shape == crop.shape
    np.testing.assert_array_equal(filled[~hole], crop[~hole])
    # The fill is the mean of the known pixels of the padded square: reflected context included.
    padded, padded_mask, _ = pad_to_aspect(crop, hole, (FIXED, FIXED))
    expected = np.rint(padded[~padded_mask].mean(axis=0))
    assert np.abs(filled[hole].astype(float) - expected).max() <= 1


# ------------------------------------------------------------------ reference: a direct onnxruntime call

def direct_call(folder, crop: np.ndarray, hole: np.ndarray, interface: str) -> np.ndarray:
    """Each export's documented usage: RGB in 0..1 and a 0/1 mask; g-ronimo/lama takes the masked
    image and the mask stacked and returns 0..1, Carve/LaMa-ONNX takes them apart and returns 0..255."""
    session = ort.InferenceSession(str(folder / "lama.onnx"), providers=["CPUExecutionProvider"])
    rgb = crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    m = hole.astype(np.float32)[None, None]
    if interface == "g-ronimo":
        out = session.run(None, {"input": np.concatenate([rgb * (1 - m), m], axis=1)})[0] * 255.0
    else:
        out = session.run(None, {"image": rgb, "mask": m})[0]
    return np.clip(np.rint(out[0].transpose(1, 2, 0)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("interface", ["g-ronimo", "carve"])
def test_lama_equals_a_direct_onnxruntime_call(interface, tiny, fixed_lama, cat_rgb):
    folder = tiny["lama"] if interface == "g-ronimo" else fixed_lama
    side = 96 if interface == "g-ronimo" else FIXED  # a dynamic export takes multiples of 32
    crop = np.ascontiguousarray(cat_rgb[100:100 + side, 150:150 + side])
    hole = np.zeros((side, side), bool)
    hole[side // 4:side // 2, side // 3:side - 10] = True
    (ours,) = load(folder).inpaint([crop], hole)
    np.testing.assert_array_equal(ours, direct_call(folder, crop, hole, interface))
