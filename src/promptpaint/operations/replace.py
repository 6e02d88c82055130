"""``replace``: repaint what is selected with the prompt, or, with ``--keep``, everything except
what is selected (a new background)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from promptpaint.core.phrases import read_phrases
from promptpaint.operations.base import Operation
from promptpaint.operations.cutout import matting_model
from promptpaint.options import EditOptions, ModelOptions, mask_given, split_labels

if TYPE_CHECKING:
    from promptpaint.pipeline.batching import Steps
    from promptpaint.pipeline.editing import EditJob


class ReplaceEdit(EditOptions):
    """Repaint what ``find`` selects, or everything except what ``keep`` selects."""

    op: Literal["replace"] = "replace"
    keep: list[str] = Field(default_factory=list, description="keep this and repaint everything else")
    matte: bool = Field(False, description="with --keep: put the kept subject back over the new background with "
                        "its matted alpha (--matting), so hair and soft edges survive")
    matting: str | None = None

    _keep = field_validator("keep", mode="before")(lambda cls, v: split_labels(v))

    @field_validator("keep")
    @classmethod
    def _keep_phrases(cls, v: list[str]) -> list[str]:
        read_phrases(v)  # the --find grammar: --keep 'the largest dog'
        return v

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ReplaceEdit:
        if not self.prompt.strip():
            raise ValueError("replace needs --prompt (what to paint)")
        if self.keep and self.find:
            raise ValueError("use either --find (repaint it) or --keep (repaint everything else), not both")
        if not (self.keep or self.has_target or mask_given(info)):
            raise ValueError("replace needs --find, --keep, --box, --point or --mask")
        if self.matte and not self.keep:
            raise ValueError("--matte goes with --keep: it mattes the kept subject")
        return self


class Replace(Operation):
    """Repaint what --find selects with --prompt, or everything except --keep (new background)."""

    name = "replace"
    options = ReplaceEdit

    #: (dilate, feather) in pixels when not given: a replaced object needs its outline covered;
    #: a kept subject should lose as little of itself as possible
    REPLACED = (4, 6)
    KEPT = (0, 3)

    def labels(self, edit: ReplaceEdit) -> list[str]:
        return list(edit.keep or edit.find)

    @classmethod
    def model_roles(cls) -> tuple[str, ...]:
        return (*super().model_roles(), "matting")

    def models(self, edit: ReplaceEdit, models: ModelOptions, mask_given: bool) -> dict[str, str]:
        needed = super().models(edit, models, mask_given)
        return {**needed, **matting_model(edit, models)} if edit.matte else needed

    def steps(self, job: EditJob) -> Steps:
        from promptpaint.core import masks as M

        edit: ReplaceEdit = job.edit
        default_dilate, default_feather = self.KEPT if edit.keep else self.REPLACED
        dilate = job.resolve("dilate", default_dilate)
        feather = job.resolve("feather", default_feather)
        if edit.keep:  # select the subject as it is, then grow the repainted area into its edge
            seg = yield from job.select(find=edit.keep, dilate=0)
            subject = seg.mask
            if edit.matte:  # repaint all but the solid core; the soft edge goes back on top below
                from promptpaint.core.alpha import band_width
                from promptpaint.operations.cutout import matte_subject

                alpha, colours = matte_subject(job, seg.mask, band_width(job.image.size))
                subject = alpha == 255
            selected = M.dilate(M.invert(subject), dilate)
        else:
            seg = yield from job.select(dilate=dilate)
            selected = seg.mask
        if selected.all():  # allowed, but then nothing of the photo is kept: probably not what was meant
            job.notes.append("the edit covers the whole image: nothing of the original is kept")
        weights = M.feather(selected, feather)
        model = job.generator()
        generated = yield from job.generate(job.image.rgb, weights, model, edit.prompt)
        if edit.matte:
            from promptpaint.core.compose import composite

            generated.variants = [composite(colours, alpha, background) for background in generated.variants]
        return job.result(generated, weights, segmentation=seg, kind="keep" if edit.keep else "replace")
