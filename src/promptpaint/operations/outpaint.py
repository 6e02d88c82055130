"""``outpaint``: extend the canvas and fill the new area; the original stays byte-identical."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from promptpaint.core.geometry import ANCHORS, Canvas, outpaint_canvas, parse_aspect, parse_expand, parse_size
from promptpaint.operations.base import Operation
from promptpaint.options import EditOptions, Limits

if TYPE_CHECKING:
    from promptpaint.core.images import LoadedImage
    from promptpaint.pipeline.batching import Steps
    from promptpaint.pipeline.editing import EditJob


class OutpaintEdit(EditOptions):
    """Extend the canvas (exactly one of aspect, expand, size) and fill the new area."""

    op: Literal["outpaint"] = "outpaint"
    aspect: str | None = Field(None, description="target aspect ratio, e.g. 16:9")
    expand: str | None = Field(None, description="pixels to add: L,T,R,B")
    size: str | None = Field(None, description="new canvas size WxH")
    anchor: str = Field("center", description="where the original sits: " + ", ".join(ANCHORS))
    overlap: int = Field(0, ge=0, description="pixels of the original repainted and blended at the seam for a "
                         "softer join (0 keeps the original byte-identical; it is always the model's context)")

    @field_validator("expand", "size", mode="before")
    @classmethod
    def _to_text(cls, v: Any) -> Any:
        return ",".join(str(x) for x in v) if isinstance(v, (list, tuple)) else v

    @model_validator(mode="after")
    def _check(self) -> OutpaintEdit:
        if self.has_target or self.exclude:
            raise ValueError("outpaint extends the canvas; it takes no --find, --exclude, --box, --point or --mask")
        given = [v for v in (self.aspect, self.expand, self.size) if v not in (None, "")]
        if len(given) != 1:
            raise ValueError("outpaint needs exactly one of --aspect, --expand or --size")
        if self.aspect:
            parse_aspect(self.aspect)
        if self.expand:
            parse_expand(self.expand)
        if self.size:
            parse_size(self.size)
        if self.anchor not in ANCHORS:
            raise ValueError(f"anchor must be one of {', '.join(ANCHORS)}")
        return self


class Outpaint(Operation):
    """Extend the canvas (--aspect 16:9, --expand L,T,R,B or --size WxH) and fill the new area."""

    name = "outpaint"
    options = OutpaintEdit
    takes_selection = False
    default_prefill = "lama"  # the new area starts from LaMa's continuation of the photo, not a mirror

    def check(self, edit: OutpaintEdit, image: LoadedImage, limits: Limits) -> None:
        self.canvas(edit, image, limits)  # an impossible or oversized canvas fails before any model loads

    @staticmethod
    def canvas(edit: OutpaintEdit, image: LoadedImage, limits: Limits) -> Canvas:
        return outpaint_canvas(image.size, aspect=edit.aspect, expand=edit.expand, size=edit.size,
                               anchor=edit.anchor, max_pixels=limits.pixel_limit)

    def steps(self, job: EditJob) -> Steps:
        import cv2
        import numpy as np

        from promptpaint.core import masks as M
        from promptpaint.core.images import LoadedImage

        edit: OutpaintEdit = job.edit
        loaded = job.image
        h, w = loaded.rgb.shape[:2]
        canvas = self.canvas(edit, loaded, job.pipeline.limits)
        top, left = canvas.offset_y, canvas.offset_x
        bottom, right = canvas.height - h - top, canvas.width - w - left
        # Mirror the photo into the new area as a starting point: the model sees plausible context.
        border = cv2.BORDER_REFLECT_101 if max(top, bottom) < h and max(left, right) < w else cv2.BORDER_REPLICATE
        rgb = cv2.copyMakeBorder(loaded.rgb, top, bottom, left, right, border)
        # The model always sees the neighbouring original pixels as context (the crop window reaches
        # into the original); only with --overlap/--feather is a band of the original repainted.
        new_area = np.ones((canvas.height, canvas.width), bool)
        new_area[canvas.original_window((w, h)).slices] = False
        weights = M.feather(new_area, job.resolve("feather", edit.overlap))
        alpha = None
        if loaded.alpha is not None:
            alpha = np.full((canvas.height, canvas.width), 255, np.uint8)
            alpha[canvas.original_window((w, h)).slices] = loaded.alpha
        placed = LoadedImage(rgb=rgb, alpha=alpha, source=loaded.source, format=loaded.format,
                             icc_profile=loaded.icc_profile)
        model = job.generator()
        generated = yield from job.generate(rgb, weights, model, edit.prompt)
        return job.result(generated, weights, base=placed, kind="outpaint",
                          canvas=[canvas.width, canvas.height], offset=[left, top])
