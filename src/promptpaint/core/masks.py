"""Mask algebra on boolean (H, W) arrays, with exact, documented semantics.

Distances are Euclidean (OpenCV's precise distance transform), so ``dilate(mask, n)`` adds every
pixel whose centre lies within ``n`` pixels of the mask: a disk, not a square.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from promptpaint.core.geometry import Window, mask_bbox


def _check(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be (H, W), got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def union(masks: Sequence[np.ndarray] | np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Pixel-wise OR of several masks; an empty list gives an all-False mask of ``shape``."""
    masks = list(masks)
    if not masks:
        if shape is None:
            raise ValueError("union of no masks needs a shape")
        return np.zeros(shape, dtype=bool)
    return np.logical_or.reduce([_check(m) for m in masks])


def subtract(mask: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` that are not in ``other`` (include minus exclude)."""
    return _check(mask) & ~_check(other)


def invert(mask: np.ndarray) -> np.ndarray:
    return ~_check(mask)


def distance_outside(mask: np.ndarray) -> np.ndarray:
    """For every pixel, the Euclidean distance to the nearest mask pixel (0 inside the mask).

    An empty mask gives +inf everywhere."""
    mask = _check(mask)
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    # distanceTransform measures from non-zero pixels to the nearest zero pixel.
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow by ``radius`` pixels (a negative radius erodes)."""
    mask = _check(mask)
    if radius < 0:
        return erode(mask, -radius)
    if radius == 0:
        return mask.copy()
    return distance_outside(mask) <= radius


def erode(mask: np.ndarray, radius: int) -> np.ndarray:
    """Shrink by ``radius`` pixels: the pixels farther than ``radius`` from the outside.

    The image border does not count as outside, so a mask touching the border stays there."""
    mask = _check(mask)
    if radius <= 0:
        return dilate(mask, -radius)
    return ~(distance_outside(~mask) <= radius)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill regions of False pixels that do not touch the image border (4-connected)."""
    mask = _check(mask)
    count, labels = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    holes = ~mask & ~np.isin(labels, border)
    return mask | holes


def remove_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Drop 8-connected specks with fewer than ``min_area`` pixels."""
    mask = _check(mask)
    if min_area <= 1 or not mask.any():
        return mask.copy()
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False  # label 0 is the background
    return keep[labels]


def component_boxes(mask: np.ndarray) -> list[Window]:
    """Tight windows around each 8-connected region of the mask, top-left first."""
    mask = _check(mask)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = [
        Window(int(x), int(y), int(x + w), int(y + h))
        for x, y, w, h, _ in stats[1:]
    ]
    return sorted(boxes, key=lambda b: (b.y0, b.x0))


def feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """Blend weights (float32 in [0, 1]): 1 on the mask, falling linearly to 0 outside it.

    A pixel at distance ``d`` from the mask gets ``1 - d / (radius + 1)``: it is > 0 exactly when
    ``d <= radius``, so ``feather(m, r) > 0`` equals ``dilate(m, r)``, the pixels that may change."""
    mask = _check(mask)
    if radius <= 0:
        return mask.astype(np.float32)
    d = distance_outside(mask)
    weights = np.clip(1.0 - d / (radius + 1), 0.0, 1.0).astype(np.float32)
    # Euclidean distances between radius and radius + 1 (diagonals) would still get a little weight.
    weights[d > radius] = 0.0
    return weights


def blend(base: np.ndarray, generated: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``base * (1 - w) + generated * w`` rounded to uint8; where ``w == 0`` the base pixel is
    returned untouched (byte-identical), where ``w == 1`` the generated one."""
    if base.shape != generated.shape:
        raise ValueError(f"blend: shapes differ {base.shape} vs {generated.shape}")
    w = np.asarray(weights, dtype=np.float32)
    if w.shape != base.shape[:2]:
        raise ValueError(f"blend: weights {w.shape} do not match image {base.shape[:2]}")
    w3 = w[..., None] if base.ndim == 3 else w
    mixed = base.astype(np.float32) * (1.0 - w3) + generated.astype(np.float32) * w3
    out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    untouched = (w3 <= 0) if base.ndim == 2 else np.broadcast_to(w3 <= 0, base.shape)
    out[untouched] = base[untouched]
    return out


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (width, height) keeping every partly covered pixel (no thin part lost)."""
    mask = _check(mask)
    if (mask.shape[1], mask.shape[0]) == tuple(size):
        return mask.copy()
    area = cv2.resize(mask.astype(np.float32), tuple(size), interpolation=cv2.INTER_AREA)
    return area > 1e-3


def touching(mask: np.ndarray, candidates: np.ndarray, margin: int) -> np.ndarray:
    """Indices (ascending) of the ``candidates`` (N, H, W) whose mask touches ``mask`` grown by
    ``margin`` pixels: what goes with an object, e.g. its shadow or reflection. Overlapping counts
    as touching; a candidate farther than ``margin`` pixels from every pixel of ``mask`` does not."""
    candidates = np.asarray(candidates, dtype=bool)
    if candidates.ndim != 3 or candidates.shape[1:] != np.shape(mask):
        raise ValueError(f"touching: candidates must be (N, {np.shape(mask)}), got {candidates.shape}")
    if not len(candidates):
        return np.zeros(0, np.int64)
    near = dilate(mask, max(0, margin))
    return np.flatnonzero((candidates & near).reshape(len(candidates), -1).any(axis=1))


__all__ = [
    "union", "subtract", "invert", "dilate", "erode", "fill_holes", "remove_small", "component_boxes",
    "feather", "blend", "resize_mask", "touching", "distance_outside", "mask_bbox",
]
