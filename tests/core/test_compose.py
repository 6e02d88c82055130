"""core.compose: colours, compositing against hand computations, covering, trimming to the subject."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.core.compose import composite, cover, parse_color, subject_window
from promptpaint.core.geometry import Window
from promptpaint.errors import InvalidOptionError


@pytest.mark.parametrize(("text", "rgb"), [
    ("white", (255, 255, 255)), ("#102030", (16, 32, 48)), ("#fff", (255, 255, 255)),
    ("10, 20, 30", (10, 20, 30)), ("0,0,0", (0, 0, 0)), (" Red ", (255, 0, 0)),
])
def test_parse_color(text, rgb):
    assert parse_color(text) == rgb


@pytest.mark.parametrize("text", ["nope", "300,0,0", "1,2", "#12345", ""])
def test_parse_color_refuses(text):
    with pytest.raises(InvalidOptionError, match="not a colour"):
        parse_color(text)


def test_composite_onto_a_colour_by_hand():
    fg = np.array([[[200, 100, 0]] * 5], np.uint8)  # one row, five pixels
    alpha = np.array([[0, 51, 102, 128, 255]], np.uint8)
    out = composite(fg, alpha, (0, 0, 255))
    # 51/255 = 0.2: 200*0.2 = 40, 100*0.2 = 20, 255*0.8 = 204; 128/255: 100.39 -> 100, 50.2 -> 50, 127
    assert out.tolist() == [[[0, 0, 255], [40, 20, 204], [80, 40, 153], [100, 50, 127], [200, 100, 0]]]


def test_composite_onto_a_picture():
    rng = np.random.default_rng(0)
    fg = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    alpha[:5] = 255
    alpha[-5:] = 0
    out = composite(fg, alpha, bg)
    # (F a + B (255 - a)) / 255 is never halfway between two integers: rounding is unambiguous
    expected = np.rint(fg * (alpha[..., None] / 255.0) + bg * (1 - alpha[..., None] / 255.0))
    assert (out == expected).all()
    assert (out[:5] == fg[:5]).all() and (out[-5:] == bg[-5:]).all()


def test_composite_refuses_mismatched_sizes():
    fg = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="alpha"):
        composite(fg, np.zeros((4, 5), np.uint8), (0, 0, 0))
    with pytest.raises(ValueError, match="background"):
        composite(fg, np.zeros((4, 4), np.uint8), np.zeros((5, 4, 3), np.uint8))


def test_cover_crops_the_middle():
    image = np.arange(50 * 100 * 3, dtype=np.uint32).reshape(50, 100, 3).astype(np.uint8)
    assert (cover(image, (50, 50)) == image[:, 25:75]).all()
    assert cover(image, (200, 200)).shape == (200, 200, 3)  # enlarged to cover, then cropped


def test_subject_window():
    alpha = np.zeros((30, 40), np.uint8)
    alpha[10:20, 5:15] = 1
    assert subject_window(alpha) == Window(5, 10, 15, 20)
    assert subject_window(alpha, 3) == Window(2, 7, 18, 23)
    assert subject_window(alpha, 100) == Window(0, 0, 40, 30)
    assert subject_window(np.zeros((5, 5), np.uint8), 2) is None
    with pytest.raises(InvalidOptionError):
        subject_window(alpha, -1)
