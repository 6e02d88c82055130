"""``cutout``: what is selected, as an RGBA image of the photo's size whose edge a matting model
refined (hair and fur stay soft and lose the old background's colour); or composited onto a colour
or a picture; optionally trimmed to the subject.

The alpha comes from a trimap around the selection's edge (``core.alpha``): 255 inside the mask
eroded by ``feather`` px, 0 farther than ``feather`` px outside it, and the matting model's values
only in that band (``--matting none``: a linear ramp across it, the feathered mask).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from promptpaint.errors import InvalidOptionError
from promptpaint.operations.base import Operation
from promptpaint.options import NO_MATTING, EditOptions, Limits, ModelOptions, mask_given

if TYPE_CHECKING:
    import numpy as np

    from promptpaint.core.images import LoadedImage
    from promptpaint.pipeline.batching import Steps
    from promptpaint.pipeline.editing import EditJob

#: options of every edit that a cut-out, which paints nothing, does not use
UNUSED = ("prompt", "negative_prompt", "steps", "guidance", "strength", "variants", "padding", "working_size",
          "refine_strength", "no_refine", "no_color_match", "prefill", "fast", "fast_lora", "deep_cache", "inpainter",
          "remover")


class CutoutEdit(EditOptions):
    """Cut out what is selected: RGBA with a matted edge, or onto a background."""

    op: Literal["cutout"] = "cutout"
    matting: str | None = Field(None, description=f"matting model, or {NO_MATTING} for the feathered mask")
    crop: int | None = Field(None, ge=0, json_schema_extra={"cli_flag_value": 0},
                             description="trim to the subject, keeping PAD pixels around it (the flag alone: 0)")
    background: str | None = Field(None, description="composite onto a colour (white, #f0f0f0, 240,240,240) or an "
                                   "image file (scaled to cover the photo) instead of transparency")

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> CutoutEdit:
        if not (self.has_target or mask_given(info)):
            raise ValueError("cutout needs --find, --box, --point or --mask")
        unused = [name for name in UNUSED if getattr(self, name) != type(self).model_fields[name].default]
        if unused:
            raise ValueError(f"cutout paints nothing, so --{unused[0].replace('_', '-')} does not apply")
        return self


class Cutout(Operation):
    """Cut out what is selected as RGBA with a matted edge (--matting), or onto --background; --crop trims."""

    name = "cutout"
    options = CutoutEdit
    generator = None  # it paints nothing: no inpainter is loaded
    paints_prompt = False
    unused_options = (*UNUSED, "seed", "offload", "compile")  # no randomness: the seed is only recorded

    @classmethod
    def model_roles(cls) -> tuple[str, ...]:
        return (*super().model_roles(), "matting")

    def models(self, edit: CutoutEdit, models: ModelOptions, mask_given: bool) -> dict[str, str]:
        return {**super().models(edit, models, mask_given), **matting_model(edit, models)}

    def check(self, edit: CutoutEdit, image: LoadedImage, limits: Limits) -> None:
        if edit.background:
            background_source(edit.background, limits)

    def steps(self, job: EditJob) -> Steps:
        import numpy as np

        from promptpaint.core import alpha as A
        from promptpaint.core.compose import composite, cover, subject_window
        from promptpaint.core.images import LoadedImage
        from promptpaint.pipeline.editing import Generated

        edit: CutoutEdit = job.edit
        image = job.image
        seg = yield from job.select(dilate=job.resolve("dilate", 0))
        band = job.resolve("feather", A.band_width(image.size))
        alpha, rgb = matte_subject(job, seg.mask, band)
        if image.alpha is not None:  # a photo that was already partly transparent stays so
            alpha = ((alpha.astype(np.uint16) * image.alpha + 127) // 255).astype(np.uint8)
        window = subject_window(alpha, edit.crop) if edit.crop is not None else None
        changed = alpha < 255  # transparent, see-through, or put onto the background
        if edit.background:
            back = background_source(edit.background, job.pipeline.limits)
            if not isinstance(back, tuple):
                back = cover(job.pipeline.load(back).rgb, image.size)
            rgb, alpha = composite(rgb, alpha, back), None
        info: dict[str, Any] = {}
        if window is not None:
            rgb, changed = rgb[window.slices], changed[window.slices]
            alpha = None if alpha is None else alpha[window.slices]
            info["offset"] = [-window.x0, -window.y0]  # where the photo's corner lies relative to the crop
        out = LoadedImage(rgb=np.ascontiguousarray(rgb), alpha=None if alpha is None else np.ascontiguousarray(alpha),
                          source=image.source, format=image.format, icc_profile=image.icc_profile)
        return job.result(Generated([out.rgb], []), changed.astype(np.float32), base=out, segmentation=seg,
                          kind="cutout", **info)


def matting_model(edit: Any, models: ModelOptions) -> dict[str, str]:
    """``{"matting": name}`` when the edit mattes with a model, ``{}`` for ``none`` (preflight)."""
    name = edit.matting or models.matting
    return {} if name == NO_MATTING else {"matting": name}


def matte_subject(job: EditJob, mask: np.ndarray, band: int) -> tuple[np.ndarray, np.ndarray]:
    """The subject ``mask`` matted: (alpha uint8, the photo with the foreground colours
    re-estimated where alpha is between 0 and 255). The matting model is the edit's ``matting``,
    else the pipeline's; it is recorded in the recipe."""
    from promptpaint.core import alpha as A

    rgb = job.image.rgb
    matter = job.pipeline.model("matting", job.edit.matting)
    job.used["matting"] = NO_MATTING if matter is None else matter.model_id
    trimap = A.make_trimap(mask, band, band)
    soft = A.soft_edge(mask, band, band) if matter is None else matter.matte(rgb, trimap, progress=job.progress)
    alpha = A.assemble_alpha(trimap, soft)
    return alpha, A.recolour_band(rgb, alpha, trimap)


def background_source(value: str, limits: Limits) -> tuple[int, int, int] | str:
    """A ``--background`` value: an (r, g, b) colour, or the path of an image file where the
    limits let options name files (never on a server)."""
    from pathlib import Path

    from promptpaint.core.compose import parse_color

    try:
        return parse_color(value)
    except InvalidOptionError:
        pass
    colours = "a colour (white, #f0f0f0, 240,240,240)"
    if not limits.read_files:
        raise InvalidOptionError(f"--background: {value!r} is not {colours}; files cannot be named here")
    if not Path(value).expanduser().is_file():
        raise InvalidOptionError(f"--background: {value!r} is neither {colours} nor an image file")
    return str(Path(value).expanduser())
