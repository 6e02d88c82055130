"""What an operation works with while it edits one image: :class:`EditJob`.

An operation's ``steps`` reads top to bottom with it: resolve its own defaults (:meth:`EditJob.resolve`),
select (:meth:`EditJob.select`), turn the selection into edit weights, load the model that paints
(:meth:`EditJob.generator`), repaint through the shared crop-and-stitch (:meth:`EditJob.generate`)
and return the result (:meth:`EditJob.result`). Every value the edit resolves or model it uses is
recorded in ``used``, which becomes the recipe entry: the recipe holds what the edit actually did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from promptpaint.core import rle
from promptpaint.core.images import LoadedImage
from promptpaint.core.types import EditResult, Progress, Segmentation
from promptpaint.errors import UnsupportedOperationError
from promptpaint.operations.base import prefill_model
from promptpaint.options import EditOptions
from promptpaint.pipeline import selection
from promptpaint.pipeline.batching import InpaintCall, Steps
from promptpaint.pipeline.stitch import (PREFILL, REFINE, REFINE_STRENGTH, ModelStep, StitchSettings, WindowJob,
                                         steps_at_strength, stitch_steps)

#: the strength of a pre-filled edit when none is given (see EditJob.generate)
PREFILL_STRENGTH = 0.99
#: --deep-cache: the whole UNet runs every third step (DeepCache's setting for Stable Diffusion;
#: measured 2.1x on the CPU at 25 steps, docs/benchmarks.md)
DEEP_CACHE_INTERVAL = 3

if TYPE_CHECKING:
    from promptpaint.backends.protocols import Inpainter
    from promptpaint.operations.base import Operation
    from promptpaint.pipeline.pipeline import Pipeline

#: what the selection records in the recipe when it used them ("read": how each phrase was read)
_SELECTION_KEYS = ("detector", "segmenter", "box_threshold", "text_threshold", "read")


@dataclass
class Generated:
    """What :meth:`EditJob.generate` returns: one repainted image per variant, and the windows run."""

    variants: list[np.ndarray]
    windows: list[WindowJob]


@dataclass(eq=False)
class EditJob:
    """One edit of one image, on its way through its operation."""

    pipeline: Pipeline
    operation: Operation
    edit: EditOptions
    image: LoadedImage
    mask: Any  # a mask given beside the options (an array through the Python API, an HTTP upload)
    seed: int
    progress: Progress | None = None
    previews: int = 0  # with the progress, a preview picture every this many denoising steps
    used: dict[str, Any] = field(default_factory=dict)  # resolved values and model ids, for the recipe
    notes: list[str] = field(default_factory=list)  # warnings for the user (a clamped box...), in the result's info

    def resolve(self, name: str, default: Any) -> Any:
        """The edit's option ``name``, or ``default`` when it was not given (None); recorded."""
        value = getattr(self.edit, name)
        value = default if value is None else value
        if value is not None:
            self.used[name] = value
        return value

    def select(self, find: list[str] | None = None, dilate: int | None = None, attach: Sequence[str] = ()) -> Steps:
        """The selection (see ``pipeline.selection.select``), after a hint a batch runner may use
        to encode and detect for several images at once. Returns a :class:`Segmentation`."""
        edit, rgb = self.edit, self.image.rgb
        hint = selection.select_hint(self.pipeline, rgb, edit, self.mask, edit.find if find is None else find, attach)
        if hint is not None:
            yield [hint]
        seg = selection.select(self.pipeline, rgb, edit, self.mask, find=find, dilate=dilate, attach=attach)
        self.used.update({k: seg.info[k] for k in _SELECTION_KEYS if k in seg.info})
        if seg.info.get("missing"):  # for the reader (and the front ends' warning); a replay ignores it
            self.used["missing"] = seg.info["missing"]
        self.notes += selection.notes(seg.info)
        if self.mask is not None or edit.mask is not None:
            # The recipe holds the mask itself (the selection's one instance is the user's mask as
            # read), not a file name that means nothing in another folder or after an upload.
            self.used["mask"] = rle.encode(seg.detections.masks[0])
        return seg

    def generator(self) -> Inpainter:
        """The model that paints (the operation's ``generator`` role), checked to fit the operation;
        in fast mode with ``--fast`` (a prompt-free remover has none: it is one pass already)."""
        role = self.operation.generator
        model = self.pipeline.model(role, getattr(self.edit, role))
        self.operation.check_generator(model)
        self.used[role] = model.model_id
        if self.edit.fast and model.has_fast_mode:
            model = model.fast(self.edit.fast_lora)
            self.used.update(fast=True, fast_lora=model.lora)
        if self.previews and model.shows_previews:
            model.use_preview_decoder(self.pipeline.models.preview_decoder)
        return model

    def generate(self, rgb: np.ndarray, weights: np.ndarray, model: Inpainter, prompt: str) -> Steps:
        """Repaint ``rgb`` where ``weights > 0`` (blended by the weights), once per variant (seed,
        seed + 1, ...), through the crop-and-stitch. Steps, guidance and strength not given are
        the model's declared defaults. A diffusion model (``upscale``) also gets the coarse-to-fine
        refinement, colour matching and the operation's pre-fill (see ``pipeline.stitch``).
        Returns :class:`Generated`."""
        edit = self.edit
        if edit.negative_prompt and model.needs_prompt and not model.takes_negative_prompt:
            raise UnsupportedOperationError(f"{model.model_id} takes no negative prompt; drop --negative-prompt")
        diffusion = model.upscale
        prefill = (edit.prefill or self.operation.default_prefill) if diffusion else "none"
        filler = None
        if prefill != "none":
            filler_name = prefill_model(prefill, edit, self.pipeline.models)
            filler = self.pipeline.remover(filler_name)
            if self.operation.generator != "remover":  # the recipe names the remover that pre-filled
                self.used["remover"] = filler_name
        default_strength = model.default_strength
        if filler is not None and default_strength is not None:
            # At strength 1 a diffusers inpainting pipeline starts from pure noise and never sees
            # the fill; just below it, it starts from the noised fill (SDXL inpainting's own default).
            default_strength = min(default_strength, PREFILL_STRENGTH)
        # A model without a setting (a remover's steps) neither uses nor records it.
        steps, guidance, strength = (self.resolve(name, default) if default is not None else None for name, default in
                                     (("steps", model.default_steps), ("guidance", model.default_guidance),
                                      ("strength", default_strength)))
        if model.scheduler is not None:
            self.used["scheduler"] = model.scheduler  # for the reader: fast and fast_lora decide it on replay
        seeds = [self.seed + i for i in range(edit.variants)]
        refine_strength = min(edit.refine_strength or REFINE_STRENGTH, strength or 1.0)
        settings = StitchSettings(working_size=edit.working_size or model.working_size, multiple=model.multiple,
                                  upscale=diffusion, padding=edit.padding, refine=not edit.no_refine,
                                  refine_strength=refine_strength, color_match=not edit.no_color_match,
                                  prefill=filler is not None, min_context=model.min_context)

        previews = self.previews if self.progress and model.shows_previews else 0
        feature_cache = 0
        if edit.deep_cache and diffusion:  # a prompt-free remover is one pass: nothing to cache
            if not model.caches_features:
                raise UnsupportedOperationError(f"{model.model_id} has no UNet: --deep-cache works with SD 1.5 "
                                                "and SDXL inpainters")
            feature_cache = DEEP_CACHE_INTERVAL
            self.used["deep_cache"] = True

        def calls(step: ModelStep) -> list[InpaintCall]:
            # One call per variant: run alone, each variant replays exactly from its own seed.
            if step.role == PREFILL:
                return [InpaintCall(filler, crop, step.mask, "", "", seed, None, None, None)
                        for crop, seed in zip(step.crops, seeds)]
            call_strength = strength if step.strength is None else step.strength
            call_steps = steps_at_strength(steps, call_strength) if steps and call_strength else steps
            return [InpaintCall(model, crop, step.mask, prompt, edit.negative_prompt, seed, call_steps, guidance,
                                call_strength, self.progress, previews, feature_cache)
                    for crop, seed in zip(step.crops, seeds)]

        variants, windows = yield from stitch_steps([rgb] * len(seeds), weights, settings, calls)
        if diffusion:  # what shaped this result, for the recipe
            self.used["prefill"] = prefill
            if edit.no_refine:
                self.used["no_refine"] = True
            elif any(w.role == REFINE for w in windows):
                self.used["refine_strength"] = refine_strength
            if edit.no_color_match:
                self.used["no_color_match"] = True
        return Generated(variants, windows)

    def result(self, generated: Generated, weights: np.ndarray, *, base: LoadedImage | None = None,
               segmentation: Segmentation | None = None, **info: Any) -> EditResult:
        """The edit's result; its recipe entry is the operation's description of what it used.
        ``base`` is the image the edit painted on when it is not the input (an outpaint canvas):
        its alpha and colour profile go to the result."""
        base = base or self.image
        if self.notes:
            info = {**info, "notes": list(self.notes)}
        return EditResult(image=generated.variants[0], mask=weights > 0, variants=tuple(generated.variants),
                          recipe=self.operation.describe(self.edit, self.used, self.seed), alpha=base.alpha,
                          segmentation=segmentation, windows=tuple(generated.windows), info=info,
                          icc_profile=base.icc_profile)
