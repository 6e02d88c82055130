"""Typed options, shared by the Python API, the CLI, recipes, the HTTP API and the batch runner.

Field names are the CLI option names with dashes as underscores, and every field accepts the same
value syntax as the CLI (``box="10,20,200,220"``, ``aspect="16:9"``). Pydantic does the checking;
:func:`parse_edit` turns its errors into one-line :class:`InvalidOptionError` messages.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from promptpaint.core.geometry import ANCHORS, parse_aspect, parse_box, parse_expand, parse_point, parse_size
from promptpaint.errors import InvalidOptionError

Device = Literal["auto", "cpu", "cuda", "mps"]
DType = Literal["auto", "float32", "float16", "bfloat16"]

#: Defaults chosen for quality per second; see README "Models" for why.
DEFAULT_MODELS = {
    "detector": "gdino-tiny",
    "segmenter": "sam-b",
    "inpainter": "sd15",
    "remover": "lama",
}


def _env(name: str, default: str) -> Any:
    return lambda: os.environ.get(f"PROMPTPAINT_{name.upper()}") or default


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelOptions(_Strict):
    """Which models to load and where. Environment variables ``PROMPTPAINT_<FIELD>`` set defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True)

    detector: str = Field(default_factory=_env("detector", DEFAULT_MODELS["detector"]),
                          description="detector alias, hub id or local folder (gdino-tiny, gdino-base, owlv2)")
    segmenter: str = Field(default_factory=_env("segmenter", DEFAULT_MODELS["segmenter"]),
                           description="segmenter alias, hub id or folder (sam-b/l/h, sam2-t/s/b/l, sam3)")
    inpainter: str = Field(default_factory=_env("inpainter", DEFAULT_MODELS["inpainter"]),
                           description="inpainting model (sd15, sdxl, flux-fill), hub id or folder")
    remover: str = Field(default_factory=_env("remover", DEFAULT_MODELS["remover"]),
                         description="remover for plain removal: lama (ONNX), telea (OpenCV, no download), or an inpainter")
    device: Device = Field(default_factory=_env("device", "auto"))
    dtype: DType = Field(default_factory=_env("dtype", "auto"))
    offload: bool = Field(False, description="offload diffusion models to the CPU between steps (small GPUs)")
    compile: bool = Field(False, description="torch.compile the denoiser (a warm-up per new crop size; for long GPU batches)")


def _split_labels(value: Any) -> list[str]:
    """``"fox. tree"`` or ``["fox", "tree"]`` -> ``["fox", "tree"]`` (Grounding DINO's '.' syntax)."""
    if value is None:
        return []
    items = [value] if isinstance(value, (str, int, float)) else list(value)
    labels = [part.strip() for item in items for part in str(item).split(".")]
    return [label for label in labels if label]


Box = tuple[float, float, float, float]
Point = tuple[float, float, int]


class SelectOptions(_Strict):
    """What to select and how to shape the mask (the foundation's mask algebra)."""

    find: list[str] = Field(default_factory=list, description="what to select, e.g. 'fox' or 'cat. dog'")
    exclude: list[str] = Field(default_factory=list, description="subtract these from the selection")
    box: list[Box] = Field(default_factory=list, description="x0,y0,x1,y1 boxes in pixels (skip detection)")
    point: list[Point] = Field(default_factory=list, description="x,y[,label] points (label 1 include, 0 exclude)")
    mask: str | None = Field(None, description="a mask image file (255 = selected); skips detection and segmentation")
    box_threshold: float = Field(0.3, ge=0, le=1)
    text_threshold: float = Field(0.25, ge=0, le=1)
    pick: str = Field("all", description="all | largest | top-K | comma list of indices (0 = best score)")
    invert: bool = False
    fill_holes: bool = False
    min_area: int = Field(0, ge=0, description="drop specks smaller than this many pixels")
    dilate: int = Field(0, description="grow the mask by N pixels (negative erodes)")
    detector: str | None = None
    segmenter: str | None = None

    @field_validator("find", "exclude", mode="before")
    @classmethod
    def _labels(cls, v: Any) -> list[str]:
        return _split_labels(v)

    @field_validator("box", mode="before")
    @classmethod
    def _boxes(cls, v: Any) -> list:
        if v is None:
            return []
        if isinstance(v, (str, int, float)) or (isinstance(v, (list, tuple)) and len(v) == 4 and all(isinstance(x, (int, float)) for x in v)):
            v = [v]
        return [parse_box(b) for b in v]

    @field_validator("point", mode="before")
    @classmethod
    def _points(cls, v: Any) -> list:
        if v is None:
            return []
        if isinstance(v, (str, int, float)) or (isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float)) for x in v)):
            v = [v]
        return [parse_point(p) for p in v]

    @field_validator("pick")
    @classmethod
    def _pick(cls, v: str) -> str:
        v = v.strip().lower()
        k = v.removeprefix("top").lstrip("-")
        ok = v in ("all", "largest") or v.startswith("top") and k.isdigit() and int(k) >= 1
        ok = ok or all(p.strip().lstrip("-").isdigit() for p in v.split(",") if p.strip()) and v.strip(", ") != ""
        if not ok:
            raise ValueError("pick must be all, largest, top-K or indices like 0,2")
        return v

    @property
    def has_target(self) -> bool:
        return bool(self.find or self.box or self.point or self.mask)


def _mask_given(info: ValidationInfo) -> bool:
    """A mask passed to the Python API as an array/image (not a path) counts as a target."""
    return bool(info.context and info.context.get("mask_given"))


class SegmentOptions(SelectOptions):
    """Options of ``promptpaint segment`` / ``Pipeline.segment``."""


class _EditBase(SelectOptions):
    prompt: str = Field("", description="what to paint")
    negative_prompt: str = Field("", description="what to avoid")
    seed: int | None = Field(None, description="random seed; chosen and recorded when omitted")
    steps: int | None = Field(None, ge=1, le=500, description="denoising steps (model default when omitted)")
    guidance: float | None = Field(None, ge=0, description="classifier-free guidance scale (model default when omitted)")
    strength: float = Field(1.0, gt=0, le=1, description="how much of the masked area is re-noised (1 = fully)")
    variants: int = Field(1, ge=1, le=16, description="how many results to generate")
    feather: int | None = Field(None, ge=0, description="soft edge width in pixels (operation default when omitted)")
    padding: float = Field(0.5, ge=0, description="context around the mask: <1 a fraction of its size, else pixels")
    working_size: int | None = Field(None, ge=64, description="model working size (model default when omitted)")
    inpainter: str | None = None
    remover: str | None = None


class ReplaceEdit(_EditBase):
    """Repaint what ``find`` selects, or everything except what ``keep`` selects."""

    op: Literal["replace"] = "replace"
    keep: list[str] = Field(default_factory=list, description="keep this and repaint everything else")

    _keep = field_validator("keep", mode="before")(lambda cls, v: _split_labels(v))

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ReplaceEdit:
        if not self.prompt.strip():
            raise ValueError("replace needs --prompt (what to paint)")
        if self.keep and self.find:
            raise ValueError("use either --find (repaint it) or --keep (repaint everything else), not both")
        if not (self.keep or self.has_target or _mask_given(info)):
            raise ValueError("replace needs --find, --keep, --box, --point or --mask")
        return self


class RemoveEdit(_EditBase):
    """Erase what is selected and fill the hole plausibly (no prompt needed)."""

    op: Literal["remove"] = "remove"

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> RemoveEdit:
        if not (self.has_target or _mask_given(info)):
            raise ValueError("remove needs --find, --box, --point or --mask")
        return self


class OutpaintEdit(_EditBase):
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


Edit = Annotated[Union[ReplaceEdit, RemoveEdit, OutpaintEdit], Field(discriminator="op")]
EDIT_TYPES: dict[str, type[_EditBase]] = {"replace": ReplaceEdit, "remove": RemoveEdit, "outpaint": OutpaintEdit}


def format_validation_error(error: ValidationError, where: str = "") -> str:
    """One line per problem, naming the option as the CLI spells it."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"] if p not in EDIT_TYPES)
        name = "--" + loc.replace("_", "-") if loc else ""
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown option"
        lines.append(f"{where}{name + ': ' if name else ''}{msg}")
    return "; ".join(lines)


def parse_options(cls: type[BaseModel], values: dict[str, Any], where: str = "", mask_given: bool = False) -> Any:
    """Build an options model, turning validation errors into one-line InvalidOptionError.

    ``mask_given``: the caller passes a mask separately (an array through the Python API)."""
    try:
        return cls.model_validate({k: v for k, v in values.items() if v is not None},
                                  context={"mask_given": mask_given})
    except ValidationError as error:
        raise InvalidOptionError(format_validation_error(error, where)) from None
    except InvalidOptionError as error:
        raise InvalidOptionError(f"{where}{error}") from None


def parse_edit(values: dict[str, Any], where: str = "", mask_given: bool = False) -> _EditBase:
    """A dict with an ``op`` key (replace, remove, outpaint) -> the typed edit."""
    op = values.get("op")
    if op not in EDIT_TYPES:
        raise InvalidOptionError(f"{where}op must be one of {', '.join(EDIT_TYPES)}, got {op!r}")
    return parse_options(EDIT_TYPES[op], values, where, mask_given)
