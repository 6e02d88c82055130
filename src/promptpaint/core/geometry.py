"""Pure geometry: boxes, crop windows, model sizes and outpaint canvases. No images, no torch.

Sizes are ``(width, height)``; boxes are ``(x0, y0, x1, y1)`` with exclusive integer ends for
windows and float pixel coordinates for detections.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from promptpaint.errors import InvalidOptionError

ANCHORS = (
    "center", "left", "right", "top", "bottom",
    "top-left", "top-right", "bottom-left", "bottom-right",
)


# ---------------------------------------------------------------- boxes

def parse_box(text: str | tuple | list) -> tuple[float, float, float, float]:
    """Parse ``"x0,y0,x1,y1"`` (pixels) into a float tuple, checking that it has an area."""
    try:
        parts = [p for p in re.split(r"[,\s]+", text.strip()) if p] if isinstance(text, str) else list(text)
        x0, y0, x1, y1 = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"box must be four numbers x0,y0,x1,y1, got {text!r}") from None
    if not (x1 > x0 and y1 > y0):
        raise InvalidOptionError(f"box {text!r} is empty: need x1 > x0 and y1 > y0")
    return (x0, y0, x1, y1)


def parse_point(text: str | tuple | list) -> tuple[float, float, int]:
    """Parse ``"x,y"`` or ``"x,y,label"`` (label 1 = include, 0 = exclude)."""
    try:
        parts = [p for p in re.split(r"[,\s]+", text.strip()) if p] if isinstance(text, str) else list(text)
        if len(parts) == 2:
            return (float(parts[0]), float(parts[1]), 1)
        if len(parts) == 3 and int(parts[2]) in (0, 1):
            return (float(parts[0]), float(parts[1]), int(parts[2]))
    except (TypeError, ValueError):
        pass
    raise InvalidOptionError(f"point must be x,y or x,y,label (label 0 or 1), got {text!r}")


def clamp_boxes(xyxy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Clip boxes to the image ``size`` (width, height); keeps x0 <= x1, y0 <= y1."""
    w, h = size
    out = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4).copy()
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, w)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, h)
    out[:, 2] = np.maximum(out[:, 0], out[:, 2])
    out[:, 3] = np.maximum(out[:, 1], out[:, 3])
    return out


# ---------------------------------------------------------------- windows

@dataclass(frozen=True)
class Window:
    """An integer crop rectangle, ends exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    @property
    def slices(self) -> tuple[slice, slice]:
        """Index an (H, W, ...) array: ``image[window.slices]``."""
        return (slice(self.y0, self.y1), slice(self.x0, self.x1))

    def overlaps(self, other: Window) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1

    def union(self, other: Window) -> Window:
        return Window(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))


def mask_bbox(mask: np.ndarray) -> Window | None:
    """The tight window around the True pixels of a mask, or None if it is empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if len(ys) == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return Window(int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)


def _grow_axis(lo: int, hi: int, want: int, limit: int) -> tuple[int, int]:
    """Grow [lo, hi) symmetrically to length ``want`` (at most ``limit``), shifting at the borders."""
    want = min(max(want, hi - lo), limit)
    extra = want - (hi - lo)
    lo -= extra // 2
    hi += extra - extra // 2
    if lo < 0:
        hi, lo = hi - lo, 0
    if hi > limit:
        lo, hi = lo - (hi - limit), limit
    return max(lo, 0), hi


def context_window(
    bbox: Window,
    image_size: tuple[int, int],
    padding: float = 0.5,
    min_side: int = 0,
    max_aspect: float = 2.0,
) -> Window:
    """Expand a mask's bounding box into the context window the model sees.

    ``padding`` < 1 is a fraction of the box's larger side added on each side, >= 1 is pixels.
    The window is then grown to at least ``min_side`` per side and to an aspect ratio of at most
    ``max_aspect`` (more context rather than a sliver), always staying inside the image.
    """
    w, h = image_size
    pad = padding * max(bbox.width, bbox.height) if padding < 1 else padding
    pad = int(math.ceil(pad))
    x0, x1 = _grow_axis(bbox.x0, bbox.x1, bbox.width + 2 * pad, w)
    y0, y1 = _grow_axis(bbox.y0, bbox.y1, bbox.height + 2 * pad, h)
    x0, x1 = _grow_axis(x0, x1, min_side, w)
    y0, y1 = _grow_axis(y0, y1, min_side, h)
    if (x1 - x0) > max_aspect * (y1 - y0):
        y0, y1 = _grow_axis(y0, y1, int(math.ceil((x1 - x0) / max_aspect)), h)
    elif (y1 - y0) > max_aspect * (x1 - x0):
        x0, x1 = _grow_axis(x0, x1, int(math.ceil((y1 - y0) / max_aspect)), w)
    return Window(x0, y0, x1, y1)


def merge_windows(windows: list[Window]) -> list[Window]:
    """Merge overlapping windows until none overlap (regions close together share a window)."""
    merged = list(windows)
    changed = True
    while changed:
        changed = False
        out: list[Window] = []
        for win in merged:
            for i, other in enumerate(out):
                if win.overlaps(other):
                    out[i] = other.union(win)
                    changed = True
                    break
            else:
                out.append(win)
        merged = out
    return sorted(merged, key=lambda w: (w.y0, w.x0))


def tile_window(window: Window, max_side: int, overlap: int) -> list[Window]:
    """Split a window whose side exceeds ``max_side`` into a grid of overlapping tiles.

    Tiles are at most ``max_side`` wide/high, overlap by at least ``overlap`` pixels, cover the
    window exactly, and are ordered row by row.
    """
    def spans(lo: int, hi: int) -> list[tuple[int, int]]:
        length = hi - lo
        if length <= max_side:
            return [(lo, hi)]
        step = max_side - overlap
        if step <= 0:
            raise InvalidOptionError(f"tile overlap {overlap} must be smaller than the tile size {max_side}")
        count = math.ceil((length - overlap) / step)
        # Spread the tiles evenly so every overlap is about the same.
        starts = np.linspace(lo, hi - max_side, count).round().astype(int)
        return [(int(s), int(s) + max_side) for s in starts]

    return [Window(x0, y0, x1, y1) for (y0, y1) in spans(window.y0, window.y1) for (x0, x1) in spans(window.x0, window.x1)]


def model_size(
    window_size: tuple[int, int],
    working_size: int,
    multiple: int = 8,
    max_long_side: float = 1.5,
) -> tuple[int, int]:
    """The size at which the model generates a window: about ``working_size**2`` pixels, the
    window's aspect kept (up to rounding to ``multiple``), the long side at most
    ``max_long_side * working_size``. Small windows are scaled up, large ones down."""
    w, h = window_size
    if w <= 0 or h <= 0:
        raise InvalidOptionError(f"empty window {window_size}")
    scale = min(working_size / math.sqrt(w * h), max_long_side * working_size / max(w, h))
    return snap_size(window_size, scale, multiple)


def snap_size(size: tuple[int, int], scale: float, multiple: int) -> tuple[int, int]:
    """``size`` times ``scale``, each side rounded to the nearest multiple of ``multiple`` (at least one)."""
    def snap(v: float) -> int:
        return max(multiple, int(round(v / multiple)) * multiple)

    return (snap(size[0] * scale), snap(size[1] * scale))


# ---------------------------------------------------------------- outpaint canvases

def parse_aspect(text: str) -> float:
    """``"16:9"``, ``"16/9"`` or ``"1.777"`` -> width / height."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[:/x]\s*(\d+(?:\.\d+)?)\s*", str(text))
    try:
        value = float(m.group(1)) / float(m.group(2)) if m else float(text)
    except (ValueError, ZeroDivisionError):
        value = float("nan")
    if not (value > 0 and math.isfinite(value)):
        raise InvalidOptionError(f"aspect must look like 16:9 (both sides > 0), got {text!r}")
    return value


def parse_expand(text: str | list | tuple) -> tuple[int, int, int, int]:
    """``"L,T,R,B"`` pixels (one number = all sides, two = horizontal,vertical)."""
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p] if isinstance(text, str) else list(text)
    try:
        values = [int(p) for p in parts]
    except (TypeError, ValueError):
        values = []
    if len(values) == 1:
        values = values * 4
    elif len(values) == 2:
        values = [values[0], values[1], values[0], values[1]]
    if len(values) != 4 or min(values) < 0:
        raise InvalidOptionError(f"expand must be L,T,R,B non-negative pixels (or one or two numbers), got {text!r}")
    return tuple(values)  # type: ignore[return-value]


def parse_size(text: str | tuple | list) -> tuple[int, int]:
    """``"1920x1080"`` -> (1920, 1080)."""
    if isinstance(text, str):
        m = re.fullmatch(r"\s*(\d+)\s*[x,:X*]\s*(\d+)\s*", text)
        values = (int(m.group(1)), int(m.group(2))) if m else None
    else:
        try:
            values = tuple(int(v) for v in text) if len(text) == 2 else None
        except (TypeError, ValueError):
            values = None
    if not values or min(values) <= 0:
        raise InvalidOptionError(f"size must look like WIDTHxHEIGHT with positive numbers, got {text!r}")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class Canvas:
    """Where the original lands on an outpaint canvas."""

    width: int
    height: int
    offset_x: int
    offset_y: int

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)

    def original_window(self, image_size: tuple[int, int]) -> Window:
        return Window(self.offset_x, self.offset_y, self.offset_x + image_size[0], self.offset_y + image_size[1])


def anchor_offset(anchor: str, free_x: int, free_y: int) -> tuple[int, int]:
    """Offset of the original inside a canvas with ``free_x``/``free_y`` spare pixels."""
    if anchor not in ANCHORS:
        raise InvalidOptionError(f"anchor must be one of {', '.join(ANCHORS)}, got {anchor!r}")
    x = 0 if "left" in anchor else free_x if "right" in anchor else free_x // 2
    y = 0 if "top" in anchor else free_y if "bottom" in anchor else free_y // 2
    return x, y


def outpaint_canvas(
    image_size: tuple[int, int],
    *,
    aspect: str | float | None = None,
    expand: str | tuple | None = None,
    size: str | tuple | None = None,
    anchor: str = "center",
    max_pixels: int | None = None,
) -> Canvas:
    """The new canvas for exactly one of ``aspect`` (smallest canvas of that aspect containing the
    image), ``expand`` (pixels per side; the anchor is ignored) or ``size`` (at least the image)."""
    given = [name for name, v in (("aspect", aspect), ("expand", expand), ("size", size)) if v not in (None, "")]
    if len(given) != 1:
        raise InvalidOptionError("outpaint needs exactly one of --aspect, --expand or --size"
                                 + (f" (got {', '.join(given)})" if given else ""))
    w, h = image_size
    if expand not in (None, ""):
        left, top, right, bottom = parse_expand(expand)
        canvas = Canvas(w + left + right, h + top + bottom, left, top)
    else:
        if aspect not in (None, ""):
            ratio = parse_aspect(str(aspect))  # a float too: 0 or a negative ratio is refused
            if w / h < ratio:
                cw, ch = max(w, int(round(h * ratio))), h
            else:
                cw, ch = w, max(h, int(round(w / ratio)))
        else:
            cw, ch = parse_size(size)  # type: ignore[arg-type]
            if cw < w or ch < h:
                raise InvalidOptionError(
                    f"outpaint size {cw}x{ch} is smaller than the image {w}x{h}; it can only grow the canvas")
        ox, oy = anchor_offset(anchor, cw - w, ch - h)
        canvas = Canvas(cw, ch, ox, oy)
    if canvas.size == (w, h):
        raise InvalidOptionError(f"outpaint would not change the {w}x{h} canvas; nothing to fill")
    if max_pixels and canvas.width * canvas.height > max_pixels:
        raise InvalidOptionError(
            f"outpaint canvas {canvas.width}x{canvas.height} exceeds the pixel limit {max_pixels}")
    return canvas


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) boxes -> (N, M)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    overlaps = box_iou(xyxy, xyxy)
    suppressed = np.zeros(len(order), bool)
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= overlaps[i] > iou
    return np.array(keep, dtype=np.int64)
