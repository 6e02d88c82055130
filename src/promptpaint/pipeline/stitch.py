"""Crop-and-stitch: generate only around the mask, at the model's resolution, and paste back.

For every group of mask regions a context window is cut out, resized (aspect kept) to the size the
model works at, repainted, resized back and blended in with the feathered weights. Pixels whose
weight is 0 are never written, so everything outside the edit stays byte-identical.

How a window is generated depends on the model:

- **Diffusion models** (``upscale``) generate each window once, as a whole, at their working size,
  however much it must shrink: one picture, one composition (a "new background" gets one sun,
  not one per tile). When the window had to shrink more than ``max_downscale`` times, the
  upscaled result is then *refined* at the image's own resolution by overlapping tiles of the
  working size, in img2img mode at ``refine_strength``: they add detail but, starting from the
  coarse picture at low strength, cannot invent new objects. Before the coarse pass the hole may
  be *pre-filled* by a remover (``prefill``), so the model starts from plausible context.
- **Removers** (LaMa, Telea) fill from the surroundings at full strength: windows larger than
  ``max_downscale`` times their working size are split into overlapping tiles filled one after
  another, each seeing the tiles already filled as context.

Every model call is yielded as a :class:`ModelStep` to the driver (see ``pipeline.batching``), so an
edit can be run alone or batched with other images' calls. With ``color_match``, each diffusion
result is corrected for the colour drift it shows where it should equal its input
(:mod:`promptpaint.core.color`) before it is blended in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import numpy as np

from promptpaint.core import masks as M
from promptpaint.core.color import match_color
from promptpaint.core.geometry import Window, context_window, merge_windows, model_size, snap_size, tile_window
from promptpaint.core.images import resize_image

PREFILL, GENERATE, REFINE = "prefill", "generate", "refine"
#: img2img strength of the refine tiles: enough to add detail, too little to invent objects
REFINE_STRENGTH = 0.35


@dataclass(frozen=True)
class WindowJob:
    """One model call: where in the image, at which size the model ran, and what for."""

    window: Window
    model_size: tuple[int, int]
    role: str = GENERATE


@dataclass(frozen=True)
class StitchSettings:
    working_size: int
    multiple: int = 8
    upscale: bool = True  # diffusion models: enlarge small windows to their working size
    padding: float = 0.5
    max_downscale: float = 2.0  # diffusion: refine past this shrink; removers: tile past it
    tile_overlap: int | None = None  # default: working_size // 8
    refine: bool = True  # diffusion: refine strongly shrunk windows at native resolution
    refine_strength: float = REFINE_STRENGTH
    color_match: bool = True  # remove each diffusion result's colour drift before blending
    prefill: bool = False  # diffusion: fill the hole with a remover before the coarse pass
    min_context: int = 0  # the model's own least window side (LaMa: 256, the crops it trained on)

    def min_side(self) -> int:
        return max(self.min_context, self.working_size // 2 if self.upscale else 0)

    def overlap(self) -> int:
        return self.tile_overlap if self.tile_overlap is not None else max(8, self.working_size // 8)


@dataclass(frozen=True, eq=False)
class Pass:
    """One model call of the plan. ``fresh``: for a tile, the window-local part of the edit no
    earlier tile of its window filled (the tile blends a ramp over the rest); None for a whole window."""

    role: str
    window: Window
    model_size: tuple[int, int]
    strength: float | None = None  # None: the edit's own strength
    fresh: np.ndarray | None = None

    @property
    def job(self) -> WindowJob:
        return WindowJob(self.window, self.model_size, self.role)


@dataclass(frozen=True, eq=False)
class ModelStep:
    """One model call the stitch asks its driver for: repaint ``mask`` (True = repaint) in each
    crop (one per image, all at the model's size). ``role`` says which model answers (PREFILL:
    the remover; GENERATE, REFINE: the edit's model) and ``strength`` how strongly (None: the
    edit's own strength)."""

    role: str
    crops: list[np.ndarray]
    mask: np.ndarray
    strength: float | None = None


def plan_windows(mask: np.ndarray, settings: StitchSettings) -> list[Window]:
    """Context windows around the mask's regions; close regions share one window."""
    h, w = mask.shape
    boxes = M.component_boxes(mask)
    windows = [context_window(b, (w, h), settings.padding, settings.min_side()) for b in boxes]
    return merge_windows(windows)


def job_size(window: Window, settings: StitchSettings) -> tuple[int, int]:
    """The size a whole window is generated at."""
    if settings.upscale:
        return model_size(window.size, settings.working_size, settings.multiple)
    # Removers work at the crop's own resolution; only large crops are shrunk.
    return snap_size(window.size, min(1.0, settings.working_size / max(window.size)), settings.multiple)


def native_size(window: Window, settings: StitchSettings) -> tuple[int, int]:
    """The size a refine tile is generated at: its own, up to rounding to the model's multiple."""
    return snap_size(window.size, 1.0, settings.multiple)


def shrink(window: Window, size: tuple[int, int]) -> float:
    """How many times the window is shrunk to be generated at ``size``."""
    return max(window.width / size[0], window.height / size[1])


def plan_passes(edit: np.ndarray, settings: StitchSettings) -> list[Pass]:
    """Every model call that repaints the ``edit`` area ((H, W) bool), in order."""
    passes: list[Pass] = []
    for window in plan_windows(edit, settings):
        if not settings.upscale:  # removers: full strength, tile by tile
            passes += _tiles(edit, window, int(settings.working_size * settings.max_downscale), GENERATE, None,
                             lambda tile: job_size(tile, settings), settings.overlap())
            continue
        size = job_size(window, settings)
        if settings.prefill:
            passes.append(Pass(PREFILL, window, size))
        passes.append(Pass(GENERATE, window, size))
        if settings.refine and shrink(window, size) > settings.max_downscale:
            passes += _tiles(edit, window, settings.working_size, REFINE, settings.refine_strength,
                             lambda tile: native_size(tile, settings), settings.overlap())
    return passes


def _tiles(edit: np.ndarray, window: Window, max_side: int, role: str, strength: float | None, size_of,
           overlap: int) -> list[Pass]:
    """Overlapping tiles of at most ``max_side`` covering the window's edit, skipping those with
    nothing left to fill."""
    todo = edit[window.slices].copy()
    passes = []
    for tile in tile_window(window, max_side, overlap):
        local = (slice(tile.y0 - window.y0, tile.y1 - window.y0), slice(tile.x0 - window.x0, tile.x1 - window.x0))
        fresh = todo[local].copy()
        if not fresh.any():
            continue
        passes.append(Pass(role, tile, size_of(tile), strength, fresh))
        todo[local] &= ~fresh
    return passes


def steps_at_strength(steps: int, strength: float) -> int:
    """The total steps to ask for so that a pass at ``strength`` < 1 still runs at least one
    denoising step (diffusers runs ``int(steps * strength)`` of them and refuses 0)."""
    total = max(steps, math.ceil(1 / strength))
    while int(total * strength) < 1:
        total += 1
    return total


#: a ModelStep -> what to yield for it (e.g. one InpaintCall per crop)
Request = Callable[[ModelStep], Any]
#: yields ``request(step)`` per model call, receives the repainted crops, returns (images, jobs)
StitchSteps = Generator[Any, list[np.ndarray], tuple[list[np.ndarray], list[WindowJob]]]


def stitch_steps(images: list[np.ndarray], weights: np.ndarray, settings: StitchSettings,
                 request: Request = lambda step: step) -> StitchSteps:
    """Repaint every image (one per variant) where ``weights > 0``; returns the new images and the
    jobs that were run. ``weights`` (H, W) float in [0, 1]: 1 = fully generated.

    A generator: for each model call it yields ``request(step)`` (a :class:`ModelStep`) and
    receives the repainted crops, so that its driver (``pipeline.batching``) can gather the calls
    of several images into one."""
    edit = weights > 0
    canvases = [im.copy() for im in images]  # what the result looks like so far: the models' context
    layers = [im.copy() for im in images]  # what the models made, at full weight (blended once at the end)
    jobs: list[WindowJob] = []
    prefilled: list[np.ndarray] | None = None
    for step in plan_passes(edit, settings) if edit.any() else []:
        area = step.window.slices
        local_edit = edit[area]
        ramp = _ramp(step.fresh, local_edit, settings.overlap())
        crops = prefilled or [resize_image(c[area], step.model_size) for c in canvases]
        crop_mask = M.resize_mask(ramp > 0, step.model_size)
        results = yield request(ModelStep(step.role, crops, crop_mask, step.strength))
        jobs.append(step.job)
        if step.role == PREFILL:  # the next pass generates from these; only the hole is taken
            prefilled = [np.where(crop_mask[..., None], r, c) for r, c in zip(results, crops)]
            continue
        prefilled = None
        if settings.color_match and settings.upscale:
            reference = np.ones_like(crop_mask) if step.role == REFINE else ring(crop_mask)
            results = [match_color(c, r, reference) for c, r in zip(crops, results)]
        for canvas, layer, image, result in zip(canvases, layers, images, results):
            layer[area] = M.blend(layer[area], resize_image(result, step.window.size), ramp)
            canvas[area] = M.blend(image[area], layer[area], weights[area])
    return canvases, jobs


def _ramp(fresh: np.ndarray | None, local_edit: np.ndarray, overlap: int) -> np.ndarray:
    """Blend weights of a model result over what its window holds: 1 on its fresh pixels; a tile
    also repaints a band of ``overlap`` pixels already filled, falling off linearly, so that
    neighbouring tiles join without a seam."""
    if fresh is None or fresh.sum() == local_edit.sum():
        return local_edit.astype(np.float32)
    return M.feather(fresh, overlap) * local_edit


def ring(mask: np.ndarray) -> np.ndarray:
    """The pixels a model was asked to keep next to the ones it repainted: where its colour drift
    shows. A band around the mask, an eighth of the crop's larger side wide (at least 8 pixels)."""
    band = max(8, max(mask.shape) // 8)
    return M.dilate(mask, band) & ~mask
