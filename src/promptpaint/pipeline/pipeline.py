"""The Pipeline: text -> detections -> masks -> edits. Every front end calls this class.

Models are loaded lazily, once per process (see ``backends.registry.cached``), and shared by all
operations; an image is encoded by the segmenter once for all its prompts. Edits are dispatched
by name to the operations of ``promptpaint.operations``: ``pipe.edit(image, {"op": "remove",
...})``, or ``pipe.remove(image, ...)`` for any registered operation.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from promptpaint import operations
from promptpaint.backends import registry
from promptpaint.backends.registry import (DETECTOR_FAMILIES, INPAINTER_FAMILIES, MATTER_FAMILIES,
                                           PREVIEW_FAMILIES, REMOVER_FAMILIES, SEGMENTER_FAMILIES)
from promptpaint.core.images import LoadedImage, load_image
from promptpaint.core.types import Detections, EditResult, Progress, Segmentation
from promptpaint.errors import InvalidOptionError, ModelLoadError
from promptpaint.options import (NO_MATTING, EditOptions, Limits, ModelOptions, SegmentOptions, SelectOptions,
                                 parse_options)
from promptpaint.pipeline import selection
from promptpaint.pipeline.batching import Steps, run_alone, run_together
from promptpaint.pipeline.editing import EditJob

log = logging.getLogger(__name__)

#: model role (the ModelOptions field) -> families that may fill it
ROLE_FAMILIES: dict[str, tuple[str, ...]] = {
    "detector": DETECTOR_FAMILIES,
    "segmenter": SEGMENTER_FAMILIES,
    "inpainter": INPAINTER_FAMILIES,
    "remover": REMOVER_FAMILIES,
    "matting": MATTER_FAMILIES,
}


class Pipeline:
    """Find, cut out and repaint what text names.

    >>> pipe = Pipeline(detector="gdino-tiny", segmenter="sam-b")
    >>> seg = pipe.segment("photo.jpg", find="fox", exclude="tail")
    >>> out = pipe.replace("photo.jpg", find="fox", prompt="a bulldog", seed=1)

    Every registered operation is a method: ``pipe.<op>(image, options=None, *, mask=None,
    progress=None, previews=0, **fields)`` (``replace``, ``remove``, ``outpaint``, ...). ``limits``
    bounds the images and canvases it accepts (see :class:`~promptpaint.options.Limits`).
    ``previews=N``: the progress callback also gets a picture of the work every N denoising steps
    (see :class:`~promptpaint.core.types.Progress`).

    A model may also be given as an object instead of a name (``Pipeline(inpainter=my_model)``):
    anything that satisfies the role's protocol (``backends/protocols.py``). It is used as it
    is, under its ``model_id`` (which the recipes record), and never looked up on disk.
    """

    def __init__(self, models: ModelOptions | None = None, *, limits: Limits | None = None, **overrides: Any):
        values = models.model_dump() if models is not None else {}
        self._given: dict[str, Any] = {}  # model_id -> a model object given instead of a name
        for role, value in overrides.items():
            if role in ROLE_FAMILIES and value is not None and not isinstance(value, (str, os.PathLike)):
                self._given[value.model_id] = value
                value = value.model_id
            if value is not None:
                values[role] = value
        self.models = parse_options(ModelOptions, values)  # env defaults are checked here too
        self.limits = limits or Limits()
        self._device: str | None = None

    # ------------------------------------------------------------ components (lazy, cached)
    @property
    def device(self) -> str:
        if self._device is None:
            from promptpaint.backends.runtime import pick_device

            self._device = pick_device(self.models.device)
        return self._device

    def detector(self, name: str | None = None):
        if (given := self._given_model(name, "detector")) is not None:
            return given
        ref = _available(name or self.models.detector, "detector")
        if ref.family == "sam3":
            return self._sam3(ref)
        from promptpaint.backends.detectors import load_detector

        return load_detector(ref, self.device, self.models.dtype)

    def segmenter(self, name: str | None = None):
        if (given := self._given_model(name, "segmenter")) is not None:
            return given
        ref = _available(name or self.models.segmenter, "segmenter")
        if ref.family == "sam3":
            return self._sam3(ref)
        from promptpaint.backends.segmenters import load_segmenter

        return load_segmenter(ref, self.device, self.models.dtype)

    def _sam3(self, ref):
        from promptpaint.backends.sam3 import load_sam3

        return load_sam3(ref, self.device, self.models.dtype)

    def inpainter(self, name: str | None = None):
        if (given := self._given_model(name, "inpainter")) is not None:
            return given
        ref = _available(name or self.models.inpainter, "inpainter")
        from promptpaint.backends.inpainters import load_inpainter

        return load_inpainter(ref, self.device, self.models.dtype, self.models.offload, self.models.compile)

    def remover(self, name: str | None = None):
        if (given := self._given_model(name, "remover")) is not None:
            return given
        ref = _available(name or self.models.remover, "remover")
        if ref.family in INPAINTER_FAMILIES:
            return self.inpainter(name or self.models.remover)
        from promptpaint.backends.removers import load_remover

        return load_remover(ref, self.device)

    def matting(self, name: str | None = None):
        """The matting model (a ``Matter``), or None for ``none`` (the feathered mask, no model)."""
        if (given := self._given_model(name, "matting")) is not None:
            return given
        name = name or self.models.matting
        if name == NO_MATTING:
            return None
        ref = _available(name, "matting")
        from promptpaint.backends.matting import load_matter

        return load_matter(ref, self.device, self.models.dtype)

    def _given_model(self, name: str | None, role: str):
        """The model object given for this name (or the role's configured name), if one was."""
        return self._given.get(name or getattr(self.models, role))

    def model(self, role: str, name: str | None = None):
        """The model of ``role`` (a ModelOptions field: detector, segmenter, inpainter, remover, matting)."""
        if role not in ROLE_FAMILIES:
            raise InvalidOptionError(f"unknown model role {role!r}; use one of {', '.join(ROLE_FAMILIES)}")
        return getattr(self, role)(name)

    def preflight(self, needed: dict[str, str]) -> None:
        """Check that every model of ``needed`` (role -> name) is here, before loading any of them,
        and name every missing one in ONE error with the ``promptpaint models fetch`` command that
        fixes it (where the hub is reachable they are downloaded first). A missing model then fails
        in about a second instead of after minutes of other work. ``prefill`` names the remover
        that fills a diffusion model's hole first (see :meth:`prefills`)."""
        needed = {role: name for role, name in self._to_load(needed).items()
                  if (role, name) != ("matting", NO_MATTING)}
        try:
            refs = registry.require(needed.items(), half=self._runs_half)
        except ModelLoadError as error:
            if "prefill" in needed and f"prefill {needed['prefill']}" in str(error):
                raise ModelLoadError(f"{error} (it pre-fills the hole: --prefill telea needs no download, "
                                     "--prefill none skips it)") from None
            raise
        if self.models.dtype == "float16":  # refused in one line here, not after minutes of work
            from promptpaint.backends.inpainters import INPAINTERS
            from promptpaint.backends.runtime import check_dtype

            fp16_safe = all(INPAINTERS[ref.family].fp16_safe for ref in refs if ref.family in INPAINTERS)
            check_dtype("float16", self.device, fp16_safe)

    def prefills(self, needed: dict[str, str]) -> bool:
        """Whether an edit needing these models (``Operation.models``) pre-fills its hole: it names a
        pre-fill and its generator (the inpainter, or a remover that is a diffusion model) is one.
        A model given as an object says so itself (``upscale``); names are looked at offline only."""
        if "prefill" not in needed:
            return False
        if "inpainter" in needed:
            name = needed["inpainter"]
            return bool(self._given[name].upscale) if name in self._given else True
        name = needed.get("remover")
        if name is None:
            return False
        if name in self._given:
            return bool(self._given[name].upscale)
        return registry.known_family(name) in INPAINTER_FAMILIES

    def _to_load(self, needed: dict[str, str]) -> dict[str, str]:
        """What of ``needed`` comes from disk: no pre-fill where nothing pre-fills, no detector beside
        a segmenter that finds from text (SAM 3), no model given as an object; with --fast, the
        fast-mode LoRA as the ``lora`` role's model."""
        needed = self._fast_lora(needed)
        if not self.prefills(needed):
            needed = {k: v for k, v in needed.items() if k != "prefill"}
        segmenter = needed.get("segmenter")
        if segmenter in self._given and self._given[segmenter].finds_from_text:
            needed = {k: v for k, v in needed.items() if k != "detector"}
        return _sam3_finds_itself({k: v for k, v in needed.items() if v not in self._given})

    def _fast_lora(self, needed: dict[str, str | None]) -> dict[str, str]:
        """``fast_lora`` (an edit with --fast; None: the model's own) -> the ``lora`` role's model, for
        the diffusion model that paints; nothing for a prompt-free remover (it has no fast mode), for
        a model given as an object (it loads its own) or for a LoRA given as a local file (checked here)."""
        if "fast_lora" not in needed:
            return needed
        needed = dict(needed)
        lora = needed.pop("fast_lora")
        role = "inpainter" if needed.get("inpainter") else "remover"
        painter = needed.get(role)
        if not painter or painter in self._given:
            return needed
        family = registry.resolve(painter, ROLE_FAMILIES[role], role).family
        if family in INPAINTER_FAMILIES:
            from promptpaint.backends.fast import fast_mode, lora_file

            mode = fast_mode(family, lora)
            if lora_file(mode) is None:
                needed["lora"] = mode.lora
        return needed

    def needed_models(self, command: str, values: dict[str, Any] | None = None, *,
                      mask_given: bool = False) -> dict[str, str]:
        """role -> model name of every model ``command`` (an operation, ``segment`` or ``detect``)
        would load with these option values (not validated: this is a check before the real run;
        no selection at all counts as a text selection, the usual case). What preflight checks,
        and what ``promptpaint models check/fetch --for COMMAND`` read."""
        values = {k: v for k, v in (values or {}).items() if v not in (None, (), [], "")}
        if command in ("detect", "segment"):
            opts = SegmentOptions.model_construct(**_fields(SegmentOptions, values))
            labels = [*opts.find, *opts.exclude, *opts.attach]
            if not (labels or opts.box or opts.point or opts.mask):
                labels = ["(what --find names)"]  # no selection at all: the usual text selection
            if command == "detect":
                return {"detector": opts.detector or self.models.detector} if labels else {}
            if opts.mask or mask_given:
                return {}
            return _sam3_finds_itself(selection.models_needed(opts, labels, self.models))
        operation = operations.get(command)
        fields = _fields(operation.options, values)
        if operation.takes_selection and not any(fields.get(k) for k in ("find", "keep", "box", "point", "mask")):
            fields["find"] = ["(what --find names)"]
        edit = operation.options.model_construct(**fields)
        return self._to_load(operation.models(edit, self.models, mask_given=mask_given))

    def _runs_half(self) -> bool:
        """Whether the diffusion models will run in half precision (then their fp16 files are fetched)."""
        from promptpaint.backends.fetch import runs_half

        return runs_half(self._device or self.models.device, self.models.dtype)

    def load(self, image: Any) -> LoadedImage:
        """Decode an image (path, bytes, array, PIL image) within the pipeline's pixel limit."""
        return image if isinstance(image, LoadedImage) else load_image(image, max_pixels=self.limits.max_pixels)

    # ------------------------------------------------------------ detection and masks
    def detect(self, image: Any, find: str | list[str], *, box_threshold: float | None = None,
               text_threshold: float | None = None, detector: str | None = None, pick: str | None = None,
               require: str | None = None) -> Detections:
        """The nouns of every ``find`` phrase in one forward pass, then each phrase's pick among its
        label's instances ("the left dog"); boxes in the image's pixels. Thresholds not given are
        the detector's own defaults; the values used, how each phrase was read and which found
        nothing (``info["missing"]``) are in the result's ``info``.

        ``require``: None (the default) answers whatever was found, possibly nothing; "any" raises
        :class:`NothingFoundError` when nothing at all was found, "all" when any phrase found
        nothing (the CLI's ``--require``)."""
        loaded = self.load(image)
        opts = parse_options(SelectOptions, {"find": find, "box_threshold": box_threshold, "pick": pick,
                                             "text_threshold": text_threshold, "detector": detector,
                                             "require": require})
        if not opts.find:
            raise InvalidOptionError("detect needs --find (what to look for)")
        dets = selection.detect_phrases(self, loaded.rgb, opts)
        if require is not None:
            selection.require_found(dets.info["missing"], bool(len(dets)), opts.require)
        return dets

    def segment(self, image: Any, options: SelectOptions | None = None, *, mask: Any = None,
                **kwargs: Any) -> Segmentation:
        """Select by text, boxes, points or a mask file and apply the mask algebra.

        Keyword arguments are the fields of :class:`SegmentOptions` (``find``, ``exclude``,
        ``box``, ``dilate``, ...). ``mask`` may be an array, a PIL image or a path."""
        loaded = self.load(image)
        opts = _options(SegmentOptions, options, kwargs, mask)
        if mask is None and not opts.mask:
            selection.check_prompts(opts, selection.labels_for(opts.find, opts), loaded.size)
            self.preflight(selection.models_needed(opts, [*opts.find, *opts.exclude, *opts.attach], self.models))
        return selection.select(self, loaded.rgb, opts, mask, attach=opts.attach)

    # ------------------------------------------------------------ edits
    def __getattr__(self, name: str) -> Any:
        """``pipe.<operation>(...)`` for every registered operation (``pipe.replace``, ``pipe.outpaint``...)."""
        if name.startswith("_") or name not in operations.names():
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return functools.partial(self.apply, name)

    def __dir__(self) -> list[str]:
        return [*super().__dir__(), *operations.names()]

    def apply(self, op: str, image: Any, options: EditOptions | None = None, *, mask: Any = None,
              progress: Progress | None = None, previews: int = 0, **kwargs: Any) -> EditResult:
        """Apply the operation ``op`` with typed ``options`` and/or keyword fields (keywords win)."""
        operation = operations.get(op)
        return self.edit(image, _options(operation.options, options, kwargs, mask), mask=mask, progress=progress,
                         previews=previews)

    def check(self, edit: EditOptions, image: Any) -> None:
        """The checks an edit can have before any model is looked up (e.g. an outpaint canvas
        against the limits); a front end calls this to refuse a request before queueing it."""
        operations.get(edit.op).check(edit, self.load(image), self.limits)

    def edit(self, image: Any, edit: EditOptions | dict, *, mask: Any = None,
             progress: Progress | None = None, previews: int = 0) -> EditResult:
        """Apply one edit (typed options, or a dict with ``op``). ``previews=N``: ``progress`` also
        gets ``preview=`` pictures every N denoising steps."""
        return run_alone(self._edit_steps(image, edit, mask, progress, previews))

    def _edit_steps(self, image: Any, edit: EditOptions | dict, mask: Any = None,
                    progress: Progress | None = None, previews: int = 0) -> Steps:
        """One edit as a generator of model requests (see ``pipeline.batching``), by its operation."""
        if isinstance(edit, dict):
            edit = operations.parse_edit(edit, mask_given=mask is not None)
        operation = operations.get(edit.op)
        loaded = self.load(image)
        operation.check(edit, loaded, self.limits)
        self.preflight(operation.models(edit, self.models, mask_given=mask is not None))
        started = time.perf_counter()
        seed = edit.seed if edit.seed is not None else random.SystemRandom().randrange(2**31)
        if previews < 0:
            raise InvalidOptionError(f"previews must be 0 (none) or a number of steps, got {previews}")
        if previews and self.models.preview_decoder not in (None, "linear"):
            registry.local_folder(registry.resolve(self.models.preview_decoder, PREVIEW_FAMILIES, "preview decoder"))
        job = EditJob(self, operation, edit, loaded, mask, seed, progress, previews)
        result = yield from operation.steps(job)
        log.info("%s done in %.2f s", edit.op, time.perf_counter() - started)
        return result

    # ------------------------------------------------------------ recipes
    def run(self, image: Any, recipe: Any, *, progress: Progress | None = None, previews: int = 0,
            mask: Any = None) -> EditResult:
        """Apply a recipe's edits in order; the result's recipe lists every edit as run."""
        return run_alone(self._run_steps(image, recipe, mask, progress, previews))

    def run_many(self, pairs: Sequence[tuple[Any, Any]], *, batch_size: int = 4) -> list[EditResult | Exception]:
        """Apply a recipe to each (image, recipe) pair, ``batch_size`` pairs at a time: their
        segmenter encodings, detector passes and same-size diffusion calls are batched across
        images (the recipes may differ, e.g. in prompt or seed). Returns, per pair, its result or
        the error that stopped it; a model that cannot load raises. Results equal those of
        :meth:`run` up to float rounding."""
        if batch_size < 1:
            raise InvalidOptionError(f"batch_size must be at least 1, got {batch_size}")
        outcomes: list[EditResult | Exception] = []
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            outcomes += run_together([self._run_steps(image, recipe) for image, recipe in chunk])
        return outcomes

    def _run_steps(self, image: Any, recipe: Any, mask: Any = None, progress: Progress | None = None,
                   previews: int = 0) -> Steps:
        from promptpaint.pipeline.recipe import load_recipe

        parsed = load_recipe(recipe)
        current = self.load(image)
        results: list[EditResult] = []
        for i, edit in enumerate(parsed.edits):
            result = yield from self._edit_steps(current, edit, mask if i == 0 else None, progress, previews)
            results.append(result)
            current = LoadedImage(rgb=result.image, alpha=result.alpha, source=current.source,
                                  format=current.format, icc_profile=current.icc_profile)
        last = results[-1]
        effective = results[0].mask.copy()
        for r in results[1:]:
            if r.mask.shape != effective.shape:  # outpaint grew the canvas, a cutout cropped it
                effective = _moved(effective, r.mask.shape, r.info.get("offset", [0, 0]))
            effective = effective | r.mask
        return EditResult(image=last.image, mask=effective, variants=last.variants,
                          recipe={"edits": [r.recipe for r in results]}, alpha=last.alpha,
                          segmentation=results[0].segmentation, windows=tuple(w for r in results for w in r.windows),
                          icc_profile=last.icc_profile)


def _available(name: str, role: str):
    """Resolve a model name for ``role`` and make sure its files are here, before any slow library
    import, so a missing model fails in about a second."""
    ref = registry.resolve(name, ROLE_FAMILIES[role], role)
    if ref.downloads:
        registry.get(ref, role=role)
    return ref


def _sam3_finds_itself(needed: dict[str, str]) -> dict[str, str]:
    """SAM 3 as the segmenter finds from text itself: no detector is loaded then."""
    segmenter = needed.get("segmenter")
    if segmenter and "detector" in needed and registry.known_family(segmenter) == "sam3":
        needed = {role: name for role, name in needed.items() if role != "detector"}
    return dict(sorted(needed.items(), key=lambda item: list(ROLE_FAMILIES).index(item[0])
                       if item[0] in ROLE_FAMILIES else len(ROLE_FAMILIES)))


def _fields(model: type, values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k in model.model_fields}


def _moved(mask: np.ndarray, shape: tuple[int, ...], offset: list[int]) -> np.ndarray:
    """``mask`` placed with its top-left corner at ``offset`` (x, y; negative where the new canvas
    is a crop) on a canvas of ``shape``; what falls outside the canvas is dropped."""
    out = np.zeros(shape, bool)
    x, y = offset
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, shape[1]), min(y + h, shape[0])
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = mask[y0 - y:y1 - y, x0 - x:x1 - x]
    return out


def _options(cls, options, kwargs: dict, mask: Any = None):
    """Typed options from an options object and/or keyword arguments (keywords win)."""
    if options is not None and not kwargs:
        return options
    base = options.model_dump(exclude_unset=True) if options is not None else {}
    return parse_options(cls, {**base, **kwargs}, mask_given=mask is not None)


__all__ = ["Pipeline", "ROLE_FAMILIES"]
