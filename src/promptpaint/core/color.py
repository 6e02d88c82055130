"""Colour continuity: measure a generated crop's colour drift where it should equal its input, and
remove that drift everywhere. Pure numpy.

A diffusion model returns the whole crop it was given, the unmasked ring around the hole included;
its VAE (and the model itself) shift colour and tone slightly and smoothly over that crop. Pasting
the hole back into untouched pixels then shows the shift as a seam. The drift is modelled per
channel as a gain plus a smooth (planar) offset over the crop,

    after ~= before + k * (before - m) + b + p * u + q * v

with ``u, v`` the crop's coordinates scaled to [-1, 1] (so a drift fitted at the model's size applies
at any size), ``m`` the mean of the reference pixels, and fitted by least squares on the reference
pixels (those the model was asked to keep), then refitted a few times on the best-fitting four
fifths (content the model legitimately changed there, such as a shadow, is not drift). Only low frequencies are removed: texture is
left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Fewer reference pixels than this: too little to tell drift from content, nothing is corrected.
MIN_REFERENCE_PIXELS = 64
#: Enough samples for a fit of four numbers; larger references are subsampled evenly.
MAX_SAMPLES = 65_536
#: The gain is pulled towards 1 where the reference has little contrast to measure it on.
GAIN_RIDGE = 1e-4
GAIN_LIMITS = (-0.5, 1.0)  # k: the gain 1 + k stays within [0.5, 2]
TRIM_SHARE = 0.8
TRIM_ROUNDS = 3


@dataclass(frozen=True)
class Drift:
    """Per channel (C,): ``gain_minus_1`` (k), ``pivot`` (m), ``offset`` (b), ``slope_u`` (p), ``slope_v`` (q)."""

    gain_minus_1: np.ndarray
    pivot: np.ndarray
    offset: np.ndarray
    slope_u: np.ndarray
    slope_v: np.ndarray

    @classmethod
    def none(cls, channels: int = 3) -> Drift:
        zero = np.zeros(channels)
        return cls(zero, zero, zero, zero, zero)

    @property
    def is_none(self) -> bool:
        return not (self.gain_minus_1.any() or self.offset.any() or self.slope_u.any() or self.slope_v.any())

    def field(self, size: tuple[int, int]) -> np.ndarray:
        """The additive part ``b + p * u + q * v`` as a float32 (H, W, C) array for an image of ``size`` (w, h)."""
        u, v = _coordinates(size)
        return (self.offset + self.slope_u * u[..., None] + self.slope_v * v[..., None]).astype(np.float32)


def _coordinates(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres scaled to [-1, 1] along each axis, as (H, W) arrays."""
    w, h = size
    u = (np.arange(w, dtype=np.float64) + 0.5) / w * 2 - 1
    v = (np.arange(h, dtype=np.float64) + 0.5) / h * 2 - 1
    return np.broadcast_to(u[None, :], (h, w)), np.broadcast_to(v[:, None], (h, w))


def estimate_drift(before: np.ndarray, after: np.ndarray, reference: np.ndarray) -> Drift:
    """How ``after`` (H, W, C) drifted from ``before`` (same shape) on the ``reference`` pixels
    ((H, W) bool). Too few reference pixels give :meth:`Drift.none`."""
    if before.shape != after.shape or reference.shape != before.shape[:2]:
        raise ValueError(f"estimate_drift: shapes differ {before.shape}, {after.shape}, {reference.shape}")
    channels = before.shape[2]
    ys, xs = np.nonzero(reference)
    if len(ys) < MIN_REFERENCE_PIXELS:
        return Drift.none(channels)
    if len(ys) > MAX_SAMPLES:  # an even subsample: the drift is smooth, its fit needs no more
        keep = np.linspace(0, len(ys) - 1, MAX_SAMPLES).astype(int)
        ys, xs = ys[keep], xs[keep]
    h, w = reference.shape
    u = (xs + 0.5) / w * 2 - 1
    v = (ys + 0.5) / h * 2 - 1
    params = np.zeros((5, channels))
    for c in range(channels):
        x = before[ys, xs, c].astype(np.float64)
        target = after[ys, xs, c].astype(np.float64) - x
        pivot = x.mean()
        design = np.column_stack([(x - pivot) / 255.0, np.ones_like(x), u, v])
        solution = _fit(design, target)
        for _ in range(TRIM_ROUNDS):  # refit on the best-fitting share: content changes are not drift
            residual = np.abs(target - design @ solution)
            inliers = residual <= np.quantile(residual, TRIM_SHARE)
            if inliers.sum() < MIN_REFERENCE_PIXELS:
                break
            solution = _fit(design[inliers], target[inliers])
        k = float(np.clip(solution[0] / 255.0, *GAIN_LIMITS))
        params[:, c] = (k, pivot, solution[1], solution[2], solution[3])
    return Drift(*params)


def _fit(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least squares with a small ridge on the gain column only (see GAIN_RIDGE)."""
    ridge = np.zeros((1, design.shape[1]))
    ridge[0, 0] = np.sqrt(GAIN_RIDGE * len(target))
    solution, *_ = np.linalg.lstsq(np.vstack([design, ridge]), np.append(target, 0.0), rcond=None)
    return solution


def remove_drift(image: np.ndarray, drift: Drift) -> np.ndarray:
    """``image`` (H, W, C) uint8 with ``drift`` undone, rounded back to uint8."""
    if drift.is_none:
        return image.copy()
    h, w = image.shape[:2]
    undone = (image.astype(np.float32) + drift.gain_minus_1 * drift.pivot - drift.field((w, h))) / (1 + drift.gain_minus_1)
    return np.clip(np.rint(undone), 0, 255).astype(np.uint8)


def match_color(before: np.ndarray, after: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``after`` with the drift it shows against ``before`` on the ``reference`` pixels removed."""
    return remove_drift(after, estimate_drift(before, after, reference))


__all__ = ["Drift", "estimate_drift", "remove_drift", "match_color", "MIN_REFERENCE_PIXELS"]
