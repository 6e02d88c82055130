"""``remove``: erase what is selected and fill the hole from its surroundings (no prompt needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import ValidationInfo, model_validator

from promptpaint.errors import InvalidOptionError
from promptpaint.operations.base import Operation
from promptpaint.options import AttachOptions, EditOptions, mask_given

if TYPE_CHECKING:
    from promptpaint.pipeline.batching import Steps
    from promptpaint.pipeline.editing import EditJob


class RemoveEdit(AttachOptions, EditOptions):
    """Erase what is selected and fill the hole plausibly (no prompt needed); ``with_shadow`` and
    ``with_reflection`` take the shadows and reflections that touch it too."""

    op: Literal["remove"] = "remove"

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> RemoveEdit:
        if not (self.has_target or mask_given(info)):
            raise ValueError("remove needs --find, --box, --point or --mask")
        return self


class Remove(Operation):
    """Erase what is selected and fill the hole (LaMa by default; --remover telea needs no download)."""

    name = "remove"
    options = RemoveEdit
    generator = "remover"
    paints_prompt = False
    default_prefill = "lama"  # a diffusion remover starts from LaMa's fill: it invents fewer objects

    #: (dilate, feather) in pixels when not given: a removed object's halo (shadow edge, blur) goes too
    DEFAULTS = (8, 6)
    #: what a diffusion model used as the remover paints when the user gave no prompt
    FILL_PROMPT = "empty background, seamless continuation of the surroundings"

    def labels(self, edit: RemoveEdit) -> list[str]:
        return list(edit.find) + edit.attach

    def steps(self, job: EditJob) -> Steps:
        from promptpaint.core import masks as M

        edit: RemoveEdit = job.edit
        dilate = job.resolve("dilate", self.DEFAULTS[0])
        feather = job.resolve("feather", self.DEFAULTS[1])
        seg = yield from job.select(dilate=dilate, attach=edit.attach)
        if seg.mask.all():
            raise InvalidOptionError("the selection covers the whole image: a removal has nothing left to fill "
                                     "it from; select less (--pick, --exclude, a smaller --dilate) or use replace")
        weights = M.feather(seg.mask, feather)
        model = job.generator()
        prompt = edit.prompt or (self.FILL_PROMPT if model.needs_prompt else "")
        generated = yield from job.generate(job.image.rgb, weights, model, prompt)
        return job.result(generated, weights, segmentation=seg, kind="remove")
