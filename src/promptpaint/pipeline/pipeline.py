"""The Pipeline: text -> detections -> masks -> edits. Every front end calls this class.

Models are loaded lazily, once per process (see ``backends.registry.cached``), and shared by all
operations; an image is encoded by the segmenter once for all its prompts.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from promptpaint.backends import registry
from promptpaint.backends.registry import (DETECTOR_FAMILIES, INPAINTER_FAMILIES, REMOVER_FAMILIES,
                                           SEGMENTER_FAMILIES)
from promptpaint.core import masks as M
from promptpaint.core.geometry import Window, mask_bbox, outpaint_canvas
from promptpaint.core.images import LoadedImage, load_image, load_mask, max_pixels_limit
from promptpaint.core.types import Detections, EditResult, Segmentation
from promptpaint.errors import InvalidOptionError, NothingFoundError, UnsupportedOperationError
from promptpaint.options import (EDIT_TYPES, ModelOptions, OutpaintEdit, RemoveEdit, ReplaceEdit, SegmentOptions,
                                 SelectOptions, _EditBase, parse_edit, parse_options)
from promptpaint.pipeline.batching import InpaintCall, SelectHint, Steps, run_alone, run_together
from promptpaint.pipeline.stitch import StitchSettings, stitch_steps

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]

#: Operation defaults for the mask's growth and soft edge (pixels): a replaced object needs its
#: outline covered; a removed one its halo too; a kept subject should lose as little as possible.
OP_DEFAULTS = {
    "replace": {"dilate": 4, "feather": 6},
    "keep": {"dilate": 0, "feather": 3},
    "remove": {"dilate": 8, "feather": 6},
}


class Pipeline:
    """Find, cut out and repaint what text names.

    >>> pipe = Pipeline(detector="gdino-tiny", segmenter="sam-b")
    >>> seg = pipe.segment("photo.jpg", find="fox", exclude="tail")
    >>> out = pipe.replace("photo.jpg", find="fox", prompt="a bulldog", seed=1)
    """

    def __init__(self, models: ModelOptions | None = None, **overrides: Any):
        values = models.model_dump() if models is not None else {}
        values.update({k: v for k, v in overrides.items() if v is not None})
        self.models = parse_options(ModelOptions, values)  # env defaults are checked here too
        self._device: str | None = None

    # ------------------------------------------------------------ components (lazy, cached)
    @property
    def device(self) -> str:
        if self._device is None:
            from promptpaint.backends.runtime import pick_device

            self._device = pick_device(self.models.device)
        return self._device

    def detector(self, name: str | None = None):
        ref = _available(name or self.models.detector, DETECTOR_FAMILIES, "detector")
        if ref.family == "sam3":
            return self._sam3(ref)
        from promptpaint.backends.detectors import load_detector

        return load_detector(ref, self.device, self.models.dtype)

    def segmenter(self, name: str | None = None):
        ref = _available(name or self.models.segmenter, SEGMENTER_FAMILIES, "segmenter")
        if ref.family == "sam3":
            return self._sam3(ref)
        from promptpaint.backends.segmenters import load_segmenter

        return load_segmenter(ref, self.device, self.models.dtype)

    def _sam3(self, ref):
        from promptpaint.backends.sam3 import load_sam3

        return load_sam3(ref, self.device, self.models.dtype)

    def inpainter(self, name: str | None = None):
        ref = _available(name or self.models.inpainter, INPAINTER_FAMILIES, "inpainter")
        from promptpaint.backends.inpainters import load_inpainter

        return load_inpainter(ref, self.device, self.models.dtype, self.models.offload, self.models.compile)

    def remover(self, name: str | None = None):
        ref = _available(name or self.models.remover, REMOVER_FAMILIES, "remover")
        if ref.family in INPAINTER_FAMILIES:
            return self.inpainter(name or self.models.remover)
        from promptpaint.backends.removers import load_remover

        return load_remover(ref, self.device)

    # ------------------------------------------------------------ detection and masks
    def detect(self, image: Any, find: str | list[str], *, box_threshold: float = 0.3,
               text_threshold: float = 0.25, detector: str | None = None) -> Detections:
        """All labels in one forward pass; boxes in the image's pixels."""
        loaded = _load(image)
        opts = parse_options(SelectOptions, {"find": find, "box_threshold": box_threshold,
                                             "text_threshold": text_threshold, "detector": detector})
        if not opts.find:
            raise InvalidOptionError("detect needs --find (what to look for)")
        return self._detect(loaded.rgb, opts.find, opts)

    def _detect(self, rgb: np.ndarray, labels: list[str], opts: SelectOptions) -> Detections:
        det = self.detector(opts.detector)
        if hasattr(det, "detect_and_segment"):  # SAM 3 as the detector
            return det.detect_and_segment(rgb, labels, opts.box_threshold)
        return det.detect(rgb, labels, opts.box_threshold, opts.text_threshold)

    def segment(self, image: Any, options: SelectOptions | None = None, *, mask: Any = None,
                **kwargs: Any) -> Segmentation:
        """Select by text, boxes, points or a mask file and apply the mask algebra.

        Keyword arguments are the fields of :class:`SegmentOptions` (``find``, ``exclude``,
        ``box``, ``dilate``, ...). ``mask`` may be an array, a PIL image or a path."""
        loaded = _load(image)
        opts = _options(SegmentOptions, options, kwargs, mask)
        self.preflight(opts, labels=bool(opts.find or opts.exclude) and mask is None and not opts.mask)
        return self._segment(loaded.rgb, opts, mask)

    def _segment(self, rgb: np.ndarray, opts: SelectOptions, mask: Any = None, find: list[str] | None = None,
                 dilate: int | None = None) -> Segmentation:
        h, w = rgb.shape[:2]
        find = opts.find if find is None else find
        info: dict[str, Any] = {"image_size": [w, h], "box_threshold": opts.box_threshold,
                                "text_threshold": opts.text_threshold}
        user_mask = mask if mask is not None else opts.mask
        excluded = Detections.empty((w, h))
        if user_mask is not None:
            selected = load_mask(user_mask, (w, h))
            box = mask_bbox(selected) or Window(0, 0, 0, 0)
            included = Detections([[box.x0, box.y0, box.x1, box.y1]], [1.0], ["mask"], selected[None], (w, h))
        else:
            if not (find or opts.box or opts.point):
                raise InvalidOptionError("nothing to select: give --find, --box, --point or --mask")
            included, excluded = self._instances(rgb, opts, find, info)
            keep = M.select(included.masks, included.scores, pick=opts.pick)
            included = included[keep]
            selected = M.union(list(included.masks), (h, w))
            if len(excluded):
                selected = M.subtract(selected, M.union(list(excluded.masks)))
        if opts.fill_holes:
            selected = M.fill_holes(selected)
        if opts.min_area:
            selected = M.remove_small(selected, opts.min_area)
        if opts.invert:
            selected = M.invert(selected)
        grow = opts.dilate if dilate is None else dilate
        if grow:
            selected = M.dilate(selected, grow)
        if not selected.any():
            raise NothingFoundError(find or ["the selection"],
                                    "the selection is empty after --exclude/--min-area/--pick; nothing to edit")
        return Segmentation(selected, included, excluded, info)

    def _instances(self, rgb, opts: SelectOptions, find: list[str], info: dict) -> tuple[Detections, Detections]:
        """Detect (all labels in one pass), then segment every box in one decoder call."""
        h, w = rgb.shape[:2]
        labels = _labels(find, opts)
        segmenter = self.segmenter(opts.segmenter)
        info["segmenter"] = segmenter.model_id
        if labels and hasattr(segmenter, "detect_and_segment"):
            # SAM 3 finds and cuts out from text in one model: it replaces the detector.
            found = segmenter.detect_and_segment(rgb, labels, opts.box_threshold)
            info["detector"] = segmenter.model_id
        elif labels:
            found = self._detect(rgb, labels, opts)
            info["detector"] = self.detector(opts.detector).model_id
        else:
            found = Detections.empty((w, h))
        missing = [label for label in find if label not in found.labels]
        if missing:
            raise NothingFoundError(missing)
        user = Detections(np.array(opts.box, np.float32).reshape(-1, 4), np.ones(len(opts.box)),
                          ["box"] * len(opts.box), image_size=(w, h))
        # Every box still without a mask (detected or given) goes through ONE decoder call.
        have_masks = found if found.masks is not None else Detections.empty((w, h))
        need_masks = user if found.masks is not None else Detections.concat([found, user])
        if len(need_masks):
            need_masks = need_masks.with_masks(segmenter.segment(rgb, boxes=need_masks.xyxy)[0])
        parts = [have_masks, need_masks]
        if opts.point:  # all points together describe one object
            masks, scores = segmenter.segment(rgb, points=np.array(opts.point, np.float32))
            box = mask_bbox(masks[0]) or Window(0, 0, 0, 0)
            parts.append(Detections([[box.x0, box.y0, box.x1, box.y1]], scores[:1], ["point"], masks[:1], (w, h)))
        boxes = Detections.concat(parts)
        if not len(boxes):
            boxes = Detections(np.zeros((0, 4)), np.zeros(0), [], np.zeros((0, h, w), bool), (w, h))
        is_excluded = np.array([label in opts.exclude and label not in find for label in boxes.labels], bool)
        return boxes[~is_excluded], boxes[is_excluded]

    # ------------------------------------------------------------ edits
    def replace(self, image: Any, options: ReplaceEdit | None = None, *, mask: Any = None,
                progress: Progress | None = None, **kwargs: Any) -> EditResult:
        """Repaint what ``find`` selects (or everything but ``keep``) with ``prompt``."""
        return self.edit(image, _options(ReplaceEdit, options, kwargs, mask), mask=mask, progress=progress)

    def remove(self, image: Any, options: RemoveEdit | None = None, *, mask: Any = None,
               progress: Progress | None = None, **kwargs: Any) -> EditResult:
        """Erase what is selected and fill the hole from its surroundings."""
        return self.edit(image, _options(RemoveEdit, options, kwargs, mask), mask=mask, progress=progress)

    def outpaint(self, image: Any, options: OutpaintEdit | None = None, *, progress: Progress | None = None,
                 **kwargs: Any) -> EditResult:
        """Extend the canvas (``aspect``, ``expand`` or ``size``) and fill the new area."""
        return self.edit(image, _options(OutpaintEdit, options, kwargs), progress=progress)

    def preflight(self, opts: SelectOptions, labels: bool = True) -> None:
        """Check that every model these options need is here, before loading any of them: a
        missing one then fails in about a second instead of after minutes of other work."""
        needs_selection = not isinstance(opts, OutpaintEdit) and not opts.mask
        if needs_selection and (labels or opts.box or opts.point):
            seg = _available(opts.segmenter or self.models.segmenter, SEGMENTER_FAMILIES, "segmenter")
            if labels and seg.family != "sam3":
                _available(opts.detector or self.models.detector, DETECTOR_FAMILIES, "detector")
        if isinstance(opts, RemoveEdit):
            _available(opts.remover or self.models.remover, REMOVER_FAMILIES, "remover")
        elif isinstance(opts, _EditBase):
            _available(opts.inpainter or self.models.inpainter, INPAINTER_FAMILIES, "inpainter")

    def edit(self, image: Any, edit: _EditBase | dict, *, mask: Any = None,
             progress: Progress | None = None) -> EditResult:
        """Apply one edit (a typed edit or a dict with ``op``)."""
        return run_alone(self._edit_steps(image, edit, mask, progress))

    def _edit_steps(self, image: Any, edit: _EditBase | dict, mask: Any = None,
                    progress: Progress | None = None) -> Steps:
        """One edit, written once as a generator of model requests (see ``pipeline.batching``)."""
        if isinstance(edit, dict):
            edit = parse_edit(edit, mask_given=mask is not None)
        loaded = _load(image)
        if isinstance(edit, OutpaintEdit):  # an impossible size is reported before any model is looked up
            self._canvas(loaded, edit)
        self.preflight(edit, labels=bool(getattr(edit, "keep", None) or edit.find or edit.exclude)
                       and mask is None)
        started = time.perf_counter()
        seed = edit.seed if edit.seed is not None else random.SystemRandom().randrange(2**31)
        if isinstance(edit, OutpaintEdit):
            result = yield from self._outpaint(loaded, edit, seed, progress)
        else:
            result = yield from self._inpaint_edit(loaded, edit, seed, mask, progress)
        log.info("%s done in %.2f s", edit.op, time.perf_counter() - started)
        return result

    def _inpaint_edit(self, loaded: LoadedImage, edit: _EditBase, seed: int, mask: Any,
                      progress: Progress | None) -> Steps:
        rgb = loaded.rgb
        keep = isinstance(edit, ReplaceEdit) and bool(edit.keep)
        kind = "keep" if keep else edit.op
        defaults = OP_DEFAULTS[kind]
        dilate = edit.dilate if "dilate" in edit.model_fields_set else defaults["dilate"]
        feather = edit.feather if edit.feather is not None else defaults["feather"]
        hint = self._select_hint(rgb, edit, mask, edit.keep if keep else edit.find)
        if hint is not None:
            yield [hint]
        if keep:
            seg = self._segment(rgb, edit, mask, find=edit.keep, dilate=0)
            selected = M.dilate(M.invert(seg.mask), dilate)
        else:
            seg = self._segment(rgb, edit, mask, dilate=dilate)
            selected = seg.mask
        model = self.remover(edit.remover) if isinstance(edit, RemoveEdit) else self.inpainter(edit.inpainter)
        weights = M.feather(selected, feather)
        prompt = edit.prompt
        if isinstance(edit, RemoveEdit) and model.needs_prompt and not prompt:
            prompt = "empty background, seamless continuation of the surroundings"
        return (yield from self._generate(loaded, rgb, weights, model, edit, prompt, seed, progress, seg, kind))

    def _select_hint(self, rgb: np.ndarray, opts: SelectOptions, mask: Any, find: list[str]) -> SelectHint | None:
        """What a selection is about to ask the models, so that a batch can ask for several images at once."""
        if mask is not None or opts.mask:
            return None
        labels = _labels(find, opts)
        if not (labels or opts.box or opts.point):
            return None
        segmenter = self.segmenter(opts.segmenter)
        if hasattr(segmenter, "detect_and_segment"):  # SAM 3 does both in one model; nothing to batch ahead
            return None
        return SelectHint(rgb, segmenter, self.detector(opts.detector) if labels else None, tuple(labels))

    def _outpaint(self, loaded: LoadedImage, edit: OutpaintEdit, seed: int, progress: Progress | None) -> Steps:
        import cv2

        h, w = loaded.rgb.shape[:2]
        canvas = self._canvas(loaded, edit)
        top, left = canvas.offset_y, canvas.offset_x
        bottom, right = canvas.height - h - top, canvas.width - w - left
        # Mirror the photo into the new area as a starting point: the model sees plausible context.
        rgb = cv2.copyMakeBorder(loaded.rgb, top, bottom, left, right, cv2.BORDER_REFLECT_101) \
            if max(top, bottom) < h and max(left, right) < w else \
            cv2.copyMakeBorder(loaded.rgb, top, bottom, left, right, cv2.BORDER_REPLICATE)
        # The model always sees the neighbouring original pixels as context (the crop window reaches
        # into the original); only with --overlap/--feather is a band of the original repainted.
        new_area = np.ones((canvas.height, canvas.width), bool)
        new_area[canvas.original_window((w, h)).slices] = False
        weights = M.feather(new_area, edit.feather if edit.feather is not None else edit.overlap)
        alpha = None
        if loaded.alpha is not None:
            alpha = np.full((canvas.height, canvas.width), 255, np.uint8)
            alpha[canvas.original_window((w, h)).slices] = loaded.alpha
        placed = LoadedImage(rgb=rgb, alpha=alpha, source=loaded.source, format=loaded.format,
                             icc_profile=loaded.icc_profile)
        model = self.inpainter(edit.inpainter)
        extra = {"canvas": [canvas.width, canvas.height], "offset": [left, top]}
        return (yield from self._generate(placed, rgb, weights, model, edit, edit.prompt, seed, progress, None,
                                          "outpaint", extra))

    @staticmethod
    def _canvas(loaded: LoadedImage, edit: OutpaintEdit):
        h, w = loaded.rgb.shape[:2]
        return outpaint_canvas((w, h), aspect=edit.aspect, expand=edit.expand, size=edit.size,
                               anchor=edit.anchor, max_pixels=max_pixels_limit())

    def _generate(self, loaded, rgb, weights, model, edit: _EditBase, prompt: str, seed: int,
                  progress: Progress | None, seg: Segmentation | None, kind: str,
                  extra: dict | None = None) -> Steps:
        if model.needs_prompt and not prompt and edit.op == "replace":
            raise InvalidOptionError("replace needs --prompt (what to paint)")
        if not model.needs_prompt and edit.op in ("replace", "outpaint"):
            raise UnsupportedOperationError(f"{model.model_id} only removes; use a diffusion inpainter for {edit.op}")
        seeds = [seed + i for i in range(edit.variants)]
        settings = StitchSettings(working_size=edit.working_size or model.working_size, multiple=model.multiple,
                                  upscale=model.upscale, padding=edit.padding)

        # One request per variant: run alone, each variant replays exactly from its own seed.
        windows = stitch_steps([rgb] * len(seeds), weights, settings)
        try:
            crops, crop_mask = next(windows)
            while True:
                repainted = yield [InpaintCall(model, crop, crop_mask, prompt, edit.negative_prompt, s, edit.steps,
                                               edit.guidance, edit.strength, progress)
                                   for crop, s in zip(crops, seeds)]
                crops, crop_mask = windows.send(repainted)
        except StopIteration as done:
            variants, jobs = done.value
        return EditResult(image=variants[0], mask=weights > 0, variants=tuple(variants),
                          recipe=self.describe(edit, seed=seed, model=model), alpha=loaded.alpha,
                          segmentation=seg, windows=tuple(jobs), info={"kind": kind, **(extra or {})})

    # ------------------------------------------------------------ recipes
    def describe(self, edit: _EditBase, *, seed: int, model=None) -> dict:
        """The edit as a replayable recipe entry: the options given, the seed, the model ids, and
        the steps and guidance actually used."""
        entry = edit.model_dump(mode="json", exclude_defaults=True) | {"op": edit.op, "seed": seed}
        roles = ["remover" if edit.op == "remove" else "inpainter"]
        if edit.op != "outpaint" and not edit.mask:
            roles += ["detector", "segmenter"]
        for role in roles:
            entry.setdefault(role, registry.resolve(getattr(self.models, role)).id)
        if model is not None:
            entry["steps"] = edit.steps or model.default_steps
            entry["guidance"] = model.default_guidance if edit.guidance is None else edit.guidance
        return entry

    def run(self, image: Any, recipe: Any, *, progress: Progress | None = None,
            mask: Any = None) -> EditResult:
        """Apply a recipe's edits in order; the result's recipe lists every edit as run."""
        return run_alone(self._run_steps(image, recipe, mask, progress))

    def run_many(self, jobs: Sequence[tuple[Any, Any]], *, batch_size: int = 4) -> list[EditResult | Exception]:
        """Apply a recipe to each (image, recipe) pair, ``batch_size`` pairs at a time: their
        segmenter encodings, detector passes and same-size diffusion calls are batched across
        images (the recipes may differ, e.g. in prompt or seed). Returns, per pair, its result or
        the error that stopped it; a model that cannot load raises. Results equal those of
        :meth:`run` up to float rounding."""
        if batch_size < 1:
            raise InvalidOptionError(f"batch_size must be at least 1, got {batch_size}")
        outcomes: list[EditResult | Exception] = []
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start:start + batch_size]
            outcomes += run_together([self._run_steps(image, recipe) for image, recipe in chunk])
        return outcomes

    def _run_steps(self, image: Any, recipe: Any, mask: Any = None, progress: Progress | None = None) -> Steps:
        from promptpaint.pipeline.recipe import load_recipe

        parsed = load_recipe(recipe)
        current = _load(image)
        results: list[EditResult] = []
        for i, edit in enumerate(parsed.edits):
            result = yield from self._edit_steps(current, edit, mask if i == 0 else None, progress)
            results.append(result)
            current = LoadedImage(rgb=result.image, alpha=result.alpha, source=current.source,
                                  format=current.format, icc_profile=current.icc_profile)
        last = results[-1]
        effective = results[0].mask.copy()
        for r in results[1:]:
            if r.mask.shape != effective.shape:  # outpaint changed the canvas: map the old mask onto it
                grown = np.zeros_like(r.mask)
                off = r.info.get("offset", [0, 0])
                grown[off[1]:off[1] + effective.shape[0], off[0]:off[0] + effective.shape[1]] = effective
                effective = grown
            effective = effective | r.mask
        return EditResult(image=last.image, mask=effective, variants=last.variants,
                          recipe={"edits": [r.recipe for r in results]}, alpha=last.alpha,
                          segmentation=results[0].segmentation, windows=tuple(w for r in results for w in r.windows))


def _available(name: str, families: tuple[str, ...], role: str):
    """Resolve a model name and make sure its files are here, before any slow library import,
    so a missing model fails in about a second."""
    ref = registry.resolve(name, families, role)
    if ref.family != "telea":
        registry.local_folder(ref)
    return ref


def _labels(find: list[str], opts: SelectOptions) -> list[str]:
    """Every label one detector pass answers: what to find, then what to exclude."""
    return list(dict.fromkeys(find + opts.exclude))


def _load(image: Any) -> LoadedImage:
    return image if isinstance(image, LoadedImage) else load_image(image)


def _options(cls, options, kwargs: dict, mask: Any = None):
    """Typed options from an options object and/or keyword arguments (keywords win)."""
    if options is not None and not kwargs:
        return options
    base = options.model_dump(exclude_unset=True) if options is not None else {}
    return parse_options(cls, {**base, **kwargs}, mask_given=mask is not None)


__all__ = ["Pipeline", "OP_DEFAULTS", "EDIT_TYPES"]
