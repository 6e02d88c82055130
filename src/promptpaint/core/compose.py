"""Putting a cut-out subject somewhere: onto a colour or a picture, and trimmed to the subject.

Images are RGB uint8 (H, W, 3); alpha is uint8 (H, W), 255 = subject. Compositing is integer
arithmetic, so where alpha is 255 the subject's pixel comes out byte for byte, and where it is 0
the background's.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import ImageColor

from promptpaint.core.geometry import Window, mask_bbox
from promptpaint.core.images import resize_image
from promptpaint.errors import InvalidOptionError


def parse_color(text: str) -> tuple[int, int, int]:
    """``"white"``, ``"#f0f0f0"``, ``"#fff"`` or ``"240,240,240"`` -> an (r, g, b) tuple."""
    value = str(text).strip()
    parts = [p for p in re.split(r"[,\s]+", value) if p]
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        rgb = tuple(int(p) for p in parts)
        if max(rgb) <= 255:
            return rgb  # type: ignore[return-value]
    else:
        try:
            return ImageColor.getrgb(value)[:3]  # type: ignore[return-value]
        except ValueError:
            pass
    raise InvalidOptionError(f"not a colour: {text!r} (use a name like white, #rrggbb or r,g,b with 0..255)")


def cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``image`` to cover ``size`` (width, height) with its aspect kept, then crop the middle."""
    width, height = size
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    scaled = resize_image(image, (max(width, round(w * scale)), max(height, round(h * scale))))
    top = (scaled.shape[0] - height) // 2
    left = (scaled.shape[1] - width) // 2
    return scaled[top:top + height, left:left + width]


def composite(foreground: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    """``(F * a + B * (255 - a)) / 255`` rounded to the nearest integer, per channel; ``background``
    is a colour (r, g, b) or an RGB image of the foreground's size."""
    if alpha.shape != foreground.shape[:2]:
        raise ValueError(f"alpha {alpha.shape} does not match the image {foreground.shape[:2]}")
    back = np.asarray(background, dtype=np.uint8)
    if back.ndim == 3 and back.shape != foreground.shape:
        raise ValueError(f"background {back.shape} does not match the image {foreground.shape}")
    a = alpha.astype(np.uint32)[..., None]
    mixed = foreground.astype(np.uint32) * a + back.astype(np.uint32) * (255 - a)
    return ((mixed + 127) // 255).astype(np.uint8)


def subject_window(alpha: np.ndarray, pad: int = 0) -> Window | None:
    """The box around every pixel with alpha > 0, grown by ``pad`` px per side inside the image;
    None when the alpha is empty."""
    if pad < 0:
        raise InvalidOptionError(f"crop padding must be 0 or more pixels, got {pad}")
    box = mask_bbox(alpha > 0)
    if box is None:
        return None
    height, width = alpha.shape
    return Window(max(0, box.x0 - pad), max(0, box.y0 - pad), min(width, box.x1 + pad), min(height, box.y1 + pad))


__all__ = ["parse_color", "cover", "composite", "subject_window"]
