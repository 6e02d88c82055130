"""Alpha mattes from a selection: trimaps, windows for a matting model, the final alpha, and the
foreground colours in the soft edge. Pure numpy and OpenCV; no model here.

A trimap (uint8, ViTMatte's convention) marks each pixel 255 (sure foreground: the mask eroded by
``inner`` px), 128 (unknown: a band ``inner`` px inside to ``outer`` px outside the mask's edge) or
0 (background). A matting model predicts alpha in the band only; :func:`assemble_alpha` keeps the
rest exact, so alpha is 0 outside the band, 255 inside the eroded mask, and soft only in between.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from promptpaint.core import masks as M
from promptpaint.core.geometry import Window, mask_bbox, tile_window
from promptpaint.errors import InvalidOptionError

BACKGROUND, UNKNOWN, FOREGROUND = 0, 128, 255

#: Default band width on each side of the mask's edge, as a share of the photo's longer side:
#: segmenter masks are off by a few pixels per megapixel, and hair reaches past them.
BAND_SHARE = 0.01
MIN_BAND_PX = 3

#: Pixels around the see-through edge the foreground estimate looks at.
FOREGROUND_MARGIN = 32


def band_width(size: tuple[int, int], px: int | None = None) -> int:
    """The band width in pixels: ``px`` when given, else :data:`BAND_SHARE` of the longer side of
    ``size`` (width, height), at least :data:`MIN_BAND_PX`."""
    if px is not None:
        if px < 0:
            raise InvalidOptionError(f"a matting band width must be 0 or more pixels, got {px}")
        return int(px)
    return max(MIN_BAND_PX, round(BAND_SHARE * max(size)))


def make_trimap(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """uint8 trimap: 255 on the mask eroded by ``inner`` px, 128 on the band from there to the mask
    dilated by ``outer`` px, 0 elsewhere."""
    sure = M.erode(mask, inner)
    reach = M.dilate(mask, outer)
    trimap = np.full(sure.shape, BACKGROUND, np.uint8)
    trimap[reach] = UNKNOWN
    trimap[sure] = FOREGROUND
    return trimap


def soft_edge(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """The feathered mask, for when no matting model is used: float32 alpha falling linearly across
    the band, from 1 at ``inner`` px inside the edge to 0 at ``outer`` px outside it. Mask pixels
    keep alpha >= 0.5 and the others get < 0.5, so thresholding at one half gives the mask back."""
    mask = M._check(mask)
    inside = M.distance_outside(~mask)  # > 0 on the mask: how deep
    outside = M.distance_outside(mask)  # > 0 off the mask: how far
    alpha = np.where(mask, 0.5 + 0.5 * inside / (inner + 1), 0.5 - 0.5 * outside / (outer + 1))
    return np.clip(alpha, 0.0, 1.0).astype(np.float32)


def assemble_alpha(trimap: np.ndarray, band_alpha: np.ndarray) -> np.ndarray:
    """uint8 alpha: 255 where the trimap is sure foreground, 0 on its background, and
    ``band_alpha`` (float, 0..1) rounded to 0..255 on the unknown band only."""
    if band_alpha.shape != trimap.shape:
        raise ValueError(f"alpha {band_alpha.shape} does not match the trimap {trimap.shape}")
    soft = np.rint(np.clip(band_alpha, 0.0, 1.0) * 255.0).astype(np.uint8)
    alpha = np.where(trimap == FOREGROUND, np.uint8(255), np.uint8(0))
    band = trimap == UNKNOWN
    alpha[band] = soft[band]
    return alpha


# ---------------------------------------------------------------- windows at native resolution

def matting_windows(unknown: np.ndarray, side: int, overlap: int, context: int,
                    multiple: int = 32) -> list[Window]:
    """Windows that together cover every unknown pixel, at the photo's own resolution.

    The unknown band's bounding box, grown by ``context`` px (what the model sees around the edge)
    and to a multiple of ``multiple`` where the photo allows, is tiled into windows of at most
    ``side`` px overlapping by ``overlap`` px; windows without an unknown pixel are dropped."""
    box = mask_bbox(unknown)
    if box is None:
        return []
    height, width = unknown.shape
    x0, x1 = _grow(box.x0 - context, box.x1 + context, multiple, width)
    y0, y1 = _grow(box.y0 - context, box.y1 + context, multiple, height)
    tiles = tile_window(Window(x0, y0, x1, y1), side, overlap)
    return [tile for tile in tiles if unknown[tile.slices].any()]


def _grow(lo: int, hi: int, multiple: int, limit: int) -> tuple[int, int]:
    """Clamp [lo, hi) to [0, limit), then grow it to a multiple of ``multiple`` (or to ``limit``)."""
    lo, hi = max(lo, 0), min(hi, limit)
    want = min(limit, math.ceil((hi - lo) / multiple) * multiple)
    lo = max(0, lo - (want - (hi - lo)) // 2)
    return (limit - want, limit) if lo + want > limit else (lo, lo + want)


def window_weights(window: Window, overlap: int) -> np.ndarray:
    """Blend weights for one window: 1 in the middle, falling linearly over ``overlap`` px towards
    each edge but never to 0, so every pixel of a window counts."""
    def ramp(length: int) -> np.ndarray:
        i = np.arange(length, dtype=np.float32)
        return np.minimum(1.0, (np.minimum(i, length - 1 - i) + 1) / (overlap + 1))

    return np.outer(ramp(window.height), ramp(window.width))


def blend_windows(shape: tuple[int, int], windows: list[Window], values: list[np.ndarray],
                  overlap: int) -> np.ndarray:
    """Stitch per-window predictions into one (H, W) float32 map: where windows overlap, their
    values are averaged with :func:`window_weights` (normalised, so the weights at each covered
    pixel sum to exactly 1); pixels no window covers are 0."""
    total = np.zeros(shape, np.float32)
    weight = np.zeros(shape, np.float32)
    for window, value in zip(windows, values, strict=True):
        w = window_weights(window, overlap)
        total[window.slices] += w * value
        weight[window.slices] += w
    covered = weight > 0
    total[covered] /= weight[covered]
    return total


# ---------------------------------------------------------------- foreground colours

def estimate_foreground(image: np.ndarray, alpha: np.ndarray, *, regularization: float = 1e-5,
                        gradient_weight: float = 1.0, small_iterations: int = 10, big_iterations: int = 2,
                        small_size: int = 32) -> np.ndarray:
    """The subject's own colours F behind a soft edge, where the photo shows ``alpha * F +
    (1 - alpha) * B`` (``alpha`` float, 0..1). Returns float32 (H, W, 3) in 0..1.

    The multilevel method of Germer et al. ("Fast multi-level foreground estimation", ICPR 2020)
    with pymatting's defaults: from a 1x1 image of the mean colours up to full size, each level
    solves, per pixel, for F and B that recompose the photo and stay close to their neighbours
    (less so across alpha edges). pymatting runs it with numba, Gauss-Seidel; here each sweep is a
    vectorised Jacobi update, which needs no JIT (numba's first compile takes most of a minute)."""
    rgb = image.astype(np.float32) / 255.0
    full_alpha = np.clip(alpha.astype(np.float32), 0.0, 1.0)
    height, width = full_alpha.shape
    foreground = _mean_colour(rgb, full_alpha > 0.9)
    background = _mean_colour(rgb, full_alpha < 0.1)
    levels = max(1, math.ceil(math.log2(max(width, height))))
    for level in range(levels + 1):
        w, h = round(width ** (level / levels)), round(height ** (level / levels))
        photo, a = _nearest(rgb, w, h), _nearest(full_alpha, w, h)
        foreground, background = _nearest(foreground, w, h), _nearest(background, w, h)
        # The per-pixel 2x2 system [[a0a0 + s, a0a1], [a0a1, a1a1 + s]] (F, B) = (a0 I + ..., a1 I + ...):
        # its matrix depends on alpha only, so it is inverted once per level.
        weights = [regularization + gradient_weight * np.abs(a - n) for n in _neighbours(a)]
        smooth = sum(weights)
        a0, a1 = a, 1.0 - a
        m00, m01, m11 = a0 * a0 + smooth, a0 * a1, a1 * a1 + smooth
        det = m00 * m11 - m01 * m01
        i00, i01, i11 = (m11 / det)[..., None], (-m01 / det)[..., None], (m00 / det)[..., None]
        seen_f, seen_b = a0[..., None] * photo, a1[..., None] * photo
        sweeps = small_iterations if max(w, h) <= small_size else big_iterations
        for _ in range(sweeps):
            b0 = seen_f + sum(wt[..., None] * n for wt, n in zip(weights, _neighbours(foreground)))
            b1 = seen_b + sum(wt[..., None] * n for wt, n in zip(weights, _neighbours(background)))
            foreground = np.clip(i00 * b0 + i01 * b1, 0.0, 1.0)
            background = np.clip(i01 * b0 + i11 * b1, 0.0, 1.0)
    return foreground


def _mean_colour(rgb: np.ndarray, where: np.ndarray) -> np.ndarray:
    mean = rgb[where].mean(axis=0) if where.any() else np.zeros(3, np.float32)
    return mean.astype(np.float32).reshape(1, 1, 3)


def _nearest(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize (pymatting's index rule), for any number of channels."""
    rows = np.minimum(array.shape[0] - 1, np.arange(height) * array.shape[0] // height)
    cols = np.minimum(array.shape[1] - 1, np.arange(width) * array.shape[1] // width)
    return array[rows][:, cols]


def _neighbours(array: np.ndarray) -> tuple[np.ndarray, ...]:
    """The left, right, upper and lower neighbour of every pixel (the border pixel repeated)."""
    padded = np.pad(array, [(1, 1), (1, 1)] + [(0, 0)] * (array.ndim - 2), mode="edge")
    return padded[1:-1, :-2], padded[1:-1, 2:], padded[:-2, 1:-1], padded[2:, 1:-1]


def recolour_band(image: np.ndarray, alpha: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Given the uint8 ``alpha`` from :func:`assemble_alpha`, the photo with the colours of the
    band's see-through pixels (0 < alpha < 255) replaced by the estimated foreground, so hair does
    not carry the old background's colour. Every other pixel is the photo's, byte for byte."""
    out = image.copy()
    soft = (trimap == UNKNOWN) & (alpha > 0) & (alpha < 255)
    box = mask_bbox(soft)
    if box is None:
        return out
    # The estimate needs the solid colours on both sides of the edge, not the whole photo.
    height, width = trimap.shape
    crop = Window(max(0, box.x0 - FOREGROUND_MARGIN), max(0, box.y0 - FOREGROUND_MARGIN),
                  min(width, box.x1 + FOREGROUND_MARGIN), min(height, box.y1 + FOREGROUND_MARGIN))
    foreground = estimate_foreground(image[crop.slices], alpha[crop.slices] / 255.0)
    here = soft[crop.slices]
    out[crop.slices][here] = np.rint(foreground[here] * 255.0).astype(np.uint8)
    return out


__all__ = [
    "BACKGROUND", "UNKNOWN", "FOREGROUND", "band_width", "make_trimap", "soft_edge", "assemble_alpha",
    "matting_windows", "window_weights", "blend_windows", "estimate_foreground", "recolour_band",
]
