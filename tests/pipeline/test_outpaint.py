"""The outpaint operation through the Python API: anchors, and canvases larger than the working size."""

from __future__ import annotations

import numpy as np

from promptpaint.pipeline.pipeline import Pipeline


def test_outpaint_anchor_left_places_original_at_left(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    result = pipe.outpaint(cat_rgb, aspect="2:1", anchor="left", steps=1, seed=0)
    assert result.image.shape == (300, 600, 3)
    assert np.array_equal(result.image[:, :451], cat_rgb)


def test_large_outpaint_is_filled_tile_by_tile(tiny):
    """A canvas much larger than the working size is filled in several windows, not one latent."""
    photo = np.full((200, 300, 3), 120, np.uint8)
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    result = pipe.outpaint(photo, expand="0,0,600,0", steps=1, seed=0)
    assert result.image.shape == (200, 900, 3)
    assert len(result.windows) > 1
    assert all(max(j.model_size) <= 2 * 64 for j in result.windows)  # tiny model: working size 64
    assert np.array_equal(result.image[:, :300], photo)
