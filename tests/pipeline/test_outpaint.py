"""The outpaint operation through the Python API: anchors, and canvases larger than the working size."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.pipeline.pipeline import Pipeline


def test_outpaint_anchor_left_places_original_at_left(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), remover=str(tiny["lama"]), device="cpu")
    result = pipe.outpaint(cat_rgb, aspect="2:1", anchor="left", steps=1, seed=0)
    assert result.image.shape == (300, 600, 3)
    assert np.array_equal(result.image[:, :451], cat_rgb)


def test_large_outpaint_is_filled_tile_by_tile(tiny):
    """A canvas much larger than the working size is filled in several windows, not one latent."""
    photo = np.full((200, 300, 3), 120, np.uint8)
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), remover=str(tiny["lama"]), device="cpu")
    result = pipe.outpaint(photo, expand="0,0,600,0", steps=1, seed=0)
    assert result.image.shape == (200, 900, 3)
    assert len(result.windows) > 1
    assert all(max(j.model_size) <= 2 * 64 for j in result.windows)  # tiny model: working size 64
    assert np.array_equal(result.image[:, :300], photo)


def test_the_pipelines_limits_bound_the_canvas(tiny, cat_rgb, monkeypatch):
    """#11: the canvas limit is the Pipeline's (``Limits``), not only the environment's."""
    from promptpaint.errors import InvalidOptionError
    from promptpaint.options import Limits

    monkeypatch.setenv("PROMPTPAINT_MAX_PIXELS", "1000000000")
    small = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu", limits=Limits(max_pixels=150_000))
    with pytest.raises(InvalidOptionError, match="exceeds the pixel limit 150000"):
        small.outpaint(cat_rgb, expand="0,0,100,0", steps=1, seed=0)  # 551x300 = 165,300 pixels
    monkeypatch.setenv("PROMPTPAINT_MAX_PIXELS", "150000")
    large = Pipeline(inpainter=str(tiny["sd-inpaint"]), remover=str(tiny["lama"]), device="cpu",
                     limits=Limits(max_pixels=200_000))  # the outpaint pre-fills with LaMa
    assert large.outpaint(cat_rgb, expand="0,0,100,0", steps=1, seed=0).image.shape == (300, 551, 3)
