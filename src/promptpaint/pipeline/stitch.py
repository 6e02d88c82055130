"""Crop-and-stitch: generate only around the mask, at the model's resolution, and paste back.

For every group of mask regions a context window is cut out, resized (aspect kept) to the size
the model works at, repainted, resized back and blended in with the feathered weights. Pixels
whose weight is 0 are never written, so everything outside the edit stays byte-identical.
Regions larger than ``max_downscale`` times the working size are split into overlapping tiles
filled one after another, each seeing the tiles already filled as context.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptpaint.core import masks as M
from promptpaint.core.geometry import Window, context_window, merge_windows, model_size, tile_window
from promptpaint.core.images import resize_image

#: (crops at model size, mask at model size) -> what to yield for them (e.g. one InpaintCall per crop)
Request = Callable[[list[np.ndarray], np.ndarray], Any]


@dataclass(frozen=True)
class WindowJob:
    """One model call: where in the image, at which size the model ran."""

    window: Window
    model_size: tuple[int, int]


@dataclass(frozen=True)
class StitchSettings:
    working_size: int
    multiple: int = 8
    upscale: bool = True  # diffusion models: enlarge small windows to their working size
    padding: float = 0.5
    max_downscale: float = 2.0
    tile_overlap: int | None = None  # default: working_size // 8
    min_context: int = 0  # the model's own least window side (LaMa: 256, the crops it trained on)

    def min_side(self) -> int:
        return max(self.min_context, self.working_size // 2 if self.upscale else 0)


def plan_windows(mask: np.ndarray, settings: StitchSettings) -> list[Window]:
    """Context windows around the mask's regions; close regions share one window."""
    h, w = mask.shape
    boxes = M.component_boxes(mask)
    windows = [context_window(b, (w, h), settings.padding, settings.min_side()) for b in boxes]
    return merge_windows(windows)


def job_size(window: Window, settings: StitchSettings) -> tuple[int, int]:
    if settings.upscale:
        return model_size(window.size, settings.working_size, settings.multiple)
    # Removers work at the crop's own resolution; only large crops are shrunk.
    scale = min(1.0, settings.working_size / max(window.size))
    snap = lambda v: max(settings.multiple, int(round(v * scale / settings.multiple)) * settings.multiple)  # noqa: E731
    return (snap(window.width), snap(window.height))


#: yields ``request(crops, mask)`` per window, receives the repainted crops, returns (images, jobs)
StitchSteps = Generator[Any, list[np.ndarray], tuple[list[np.ndarray], list[WindowJob]]]


def stitch_steps(images: list[np.ndarray], weights: np.ndarray, settings: StitchSettings,
                 request: Request = lambda crops, mask: (crops, mask)) -> StitchSteps:
    """Repaint every image (one per variant) where ``weights > 0``; returns the new images and the
    jobs that were run. ``weights`` (H, W) float in [0, 1]: 1 = fully generated.

    A generator: for each window it yields ``request(crops at model size, mask at model size)``
    and receives the repainted crops, so that its driver (``pipeline.batching``) can gather the
    calls of several images into one."""
    edit = weights > 0
    canvases = [im.copy() for im in images]
    jobs: list[WindowJob] = []
    if not edit.any():
        return canvases, jobs
    max_side = max(settings.multiple, int(settings.working_size * settings.max_downscale))
    overlap = settings.tile_overlap if settings.tile_overlap is not None else max(8, settings.working_size // 8)
    todo = edit.copy()
    for window in plan_windows(edit, settings):
        for tile in tile_window(window, max_side, overlap):
            area = tile.slices
            fresh = todo[area]  # the part of this tile no earlier tile filled
            if not fresh.any():
                continue
            # Re-paint a band of already filled pixels so neighbouring tiles join without a seam.
            ramp = M.feather(fresh, overlap) if fresh.sum() < edit[area].sum() else 1.0
            job_weights = weights[area] * ramp
            size = job_size(tile, settings)
            crops = [resize_image(c[area], size) for c in canvases]
            results = yield request(crops, M.resize_mask(job_weights > 0, size))
            for canvas, result in zip(canvases, results):
                canvas[area] = M.blend(canvas[area], resize_image(result, tile.size), job_weights)
            jobs.append(WindowJob(tile, size))
            todo[area] &= ~fresh
    return canvases, jobs
