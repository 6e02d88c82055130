"""The LaMa remover with both kinds of ONNX export: fixed input size (Carve/LaMa-ONNX's 512x512,
here a tiny 64x64 twin) and dynamic sides (the kit's default tiny LaMa)."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.backends.removers import fixed_input_size
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
