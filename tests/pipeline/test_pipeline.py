"""The Pipeline's edits through the Python API with the tiny models: windows at the model's size,
reproducible seeds and variants, progress, typed errors."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.errors import InvalidOptionError, ModelLoadError
from promptpaint.pipeline.pipeline import Pipeline


def test_small_object_is_generated_at_working_size(tiny):
    """A 60x60 object in a 2000x1500 photo gets a window of its own, enlarged to the model size."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (1500, 2000, 3), dtype=np.uint8)
    pipe = Pipeline(segmenter=str(tiny["sam"]), inpainter=str(tiny["sd-inpaint"]), device="cpu")
    mask = np.zeros((1500, 2000), bool)
    mask[700:760, 1200:1260] = True
    result = pipe.replace(photo, mask=mask, prompt="a red ball", steps=1, seed=0, working_size=512, dilate=0,
                          feather=0)
    (job,) = result.windows
    assert job.model_size == (512, 512)  # not a 512x384 squash of the whole photo
    assert job.window.width <= 256 and job.window.height <= 256  # a crop around the object
    assert job.window.x0 <= 1200 and job.window.x1 >= 1260
    changed = (result.image != photo).any(axis=-1)
    assert not changed[~mask].any() and changed[mask].all()


def test_far_apart_regions_get_their_own_windows(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    mask = np.zeros(cat_rgb.shape[:2], bool)
    mask[10:20, 10:20] = True
    mask[270:290, 420:440] = True
    result = pipe.replace(cat_rgb, mask=mask, prompt="x", steps=1, seed=0, dilate=0, feather=0, padding=8)
    assert len(result.windows) == 2


def test_same_seed_same_bytes_and_variants_differ(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    mask = np.zeros(cat_rgb.shape[:2], bool)
    mask[50:150, 100:250] = True
    a = pipe.replace(cat_rgb, mask=mask, prompt="a dog", steps=2, seed=42, variants=2)
    b = pipe.replace(cat_rgb, mask=mask, prompt="a dog", steps=2, seed=42, variants=2)
    assert len(a.variants) == 2
    assert all(np.array_equal(x, y) for x, y in zip(a.variants, b.variants))
    assert not np.array_equal(a.variants[0], a.variants[1])
    assert a.recipe["seed"] == 42 and a.recipe["op"] == "replace"


def test_progress_reports_steps(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    mask = np.zeros(cat_rgb.shape[:2], bool)
    mask[50:100, 50:100] = True
    seen = []
    # one window (with the tiny model's 64 px, refine tiles would add passes of their own)
    pipe.replace(cat_rgb, mask=mask, prompt="x", steps=3, seed=0, no_refine=True,
                 progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_api_errors_are_typed(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    with pytest.raises(InvalidOptionError):
        pipe.outpaint(cat_rgb, aspect="0:1")
    with pytest.raises(ModelLoadError):
        pipe.replace(cat_rgb, box="1,1,9,9", prompt="x", inpainter=str(tiny["sam"]))
