"""Typed options, shared by the Python API, the CLI, recipes, the HTTP API and the batch runner.

Field names are the CLI option names with dashes as underscores, and every field accepts the same
value syntax as the CLI (``box="10,20,200,220"``, ``aspect="16:9"``). Pydantic does the checking;
:func:`parse_options` turns its errors into one-line :class:`InvalidOptionError` messages.

Here live the option models every operation shares (models, selection, generation) and the limits;
each operation's own model (``ReplaceEdit``...) lives in its module in ``promptpaint.operations``.

**None means "not given"**: a field whose default depends on the operation or the model
(``dilate``, ``feather``, ``box_threshold``, ``text_threshold``, ``steps``, ``guidance``,
``strength``) defaults to None, and the operation resolves it where it is used; recipes record the
resolved values.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from promptpaint.core.geometry import parse_box, parse_point
from promptpaint.core.phrases import read_phrases, read_pick
from promptpaint.errors import InvalidOptionError

Device = Literal["auto", "cpu", "cuda", "mps"]
DType = Literal["auto", "float32", "float16", "bfloat16"]

#: Defaults chosen for quality per second; see README "Models" for why.
DEFAULT_MODELS = {
    "detector": "gdino-tiny",
    "segmenter": "sam-b",
    "inpainter": "sd15",
    "remover": "lama",
    "matting": "vitmatte",
}

#: the matting "model" that loads nothing: alpha is the feathered mask
NO_MATTING = "none"


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
    matting: str = Field(default_factory=_env("matting", DEFAULT_MODELS["matting"]),
                         description=f"matting model for cutout and replace --matte (vitmatte), hub id or folder; "
                                     f"{NO_MATTING}: the feathered mask, no model")
    device: Device = Field(default_factory=_env("device", "auto"))
    dtype: DType = Field(default_factory=_env("dtype", "auto"))
    offload: bool = Field(False, description="offload diffusion models to the CPU between steps (small GPUs)")
    compile: bool = Field(False, description="torch.compile the denoiser (a warm-up per new crop size; for long GPU batches)")
    preview_decoder: str | None = Field(default_factory=lambda: os.environ.get("PROMPTPAINT_PREVIEW_DECODER") or None,
                                        description="what draws live previews: a tiny autoencoder (taesd, taesdxl, "
                                        "taef1, hub id or folder) or 'linear' (default: the model's tiny autoencoder "
                                        "when it is on this machine, else linear)")


def split_labels(value: Any) -> list[str]:
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

    find: list[str] = Field(default_factory=list, description="what to select: 'fox', 'cat. dog', 'the left dog', "
                            "'the two largest cats' (see README: Saying which one)")
    exclude: list[str] = Field(default_factory=list, description="subtract these from the selection "
                               "(the same phrases: --find cat --exclude 'the left cat')")
    box: list[Box] = Field(default_factory=list, description="x0,y0,x1,y1 boxes in pixels (skip detection)")
    point: list[Point] = Field(default_factory=list, description="x,y[,label] points (label 1 include, 0 exclude)")
    mask: str | dict | None = Field(None, description="a mask image file (255 = selected), or in a recipe the mask "
                                    "itself as COCO RLE; skips detection and segmentation")
    box_threshold: float | None = Field(None, ge=0, le=1, description="detector score a box needs "
                                        "(the detector's default when omitted)")
    text_threshold: float | None = Field(None, ge=0, le=1, description="score the label's words need "
                                         "(Grounding DINO; the detector's default when omitted)")
    pick: str = Field("all", description="which of each label's instances to keep: all, left, right, top, bottom, "
                      "center, middle, largest, smallest, 'the second from the right', '2 largest', top-K "
                      "(best scores) or indices like 0,2 (0 = best score); a --find phrase's own words win")
    require: Literal["any", "all"] = Field("any", description="any: go on with what was found and warn about "
                                           "the rest (exit 3 only when nothing is found); all: stop when any "
                                           "--find phrase finds nothing")
    invert: bool = False
    fill_holes: bool = False
    min_area: int = Field(0, ge=0, description="drop specks smaller than this many pixels")
    dilate: int | None = Field(None, description="grow the mask by N pixels (negative erodes; the "
                               "operation's default when omitted)")
    detector: str | None = None
    segmenter: str | None = None

    @field_validator("find", "exclude", mode="before")
    @classmethod
    def _labels(cls, v: Any) -> list[str]:
        return split_labels(v)

    @field_validator("find", "exclude")
    @classmethod
    def _phrases(cls, v: list[str]) -> list[str]:
        read_phrases(v)  # a phrase the grammar cannot read fails here, before any model loads
        return v

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

    @field_validator("mask")
    @classmethod
    def _mask(cls, v: Any) -> Any:
        """A path, or a COCO RLE ``{"size": [H, W], "counts": "..."}`` (what recipes record)."""
        if isinstance(v, dict) and not (set(v) == {"size", "counts"} and isinstance(v["counts"], str)
                                        and isinstance(v["size"], list) and len(v["size"]) == 2):
            raise ValueError('an embedded mask must be COCO RLE: {"size": [height, width], "counts": "..."}')
        return v

    @field_validator("pick")
    @classmethod
    def _pick(cls, v: str) -> str:
        read_pick(v)  # the same words as in --find phrases (core/phrases.py); one-line errors
        return " ".join(v.split()).lower()

    @property
    def has_target(self) -> bool:
        return bool(self.find or self.box or self.point or self.mask)


def mask_given(info: ValidationInfo) -> bool:
    """A mask passed to the Python API as an array/image (not a path) counts as a target."""
    return bool(info.context and info.context.get("mask_given"))


class AttachOptions(_Strict):
    """Regions that go with the selected objects when they touch them: shadows and reflections,
    asked of the detector in the same pass (``segment`` and ``remove``)."""

    with_shadow: bool = Field(False, description="add the shadows that touch the selection (detected as "
                              "'shadow' in the same pass)")
    with_reflection: bool = Field(False, description="add the reflections that touch the selection (detected "
                                  "as 'reflection' in the same pass)")

    @model_validator(mode="after")
    def _attach_needs_a_selection(self, info: ValidationInfo) -> AttachOptions:
        if self.attach and (getattr(self, "mask", None) or mask_given(info)):
            raise ValueError("--with-shadow and --with-reflection need --find, --box or --point: a mask is "
                             "used as it is")
        return self

    @property
    def attach(self) -> list[str]:
        """What the detector is asked for beside the selection, to go with it where it touches it."""
        return [label for label, wanted in (("shadow", self.with_shadow), ("reflection", self.with_reflection))
                if wanted]


class SegmentOptions(AttachOptions, SelectOptions):
    """Options of ``promptpaint segment`` / ``Pipeline.segment``."""


class EditOptions(SelectOptions):
    """What every edit shares: the selection, and how the selected area is generated. Each
    operation's options (``ReplaceEdit``, ``RemoveEdit``...) extend it with an ``op`` and its own."""

    op: str
    prompt: str = Field("", description="what to paint")
    negative_prompt: str = Field("", description="what to avoid")
    seed: int | None = Field(None, description="random seed; chosen and recorded when omitted")
    steps: int | None = Field(None, ge=1, le=500, description="denoising steps (model default when omitted)")
    guidance: float | None = Field(None, ge=0, description="classifier-free guidance scale (model default when omitted)")
    strength: float | None = Field(None, gt=0, le=1, description="how much of the masked area is re-noised "
                                   "(1 = fully; model default when omitted)")
    variants: int = Field(1, ge=1, le=16, description="how many results to generate")
    feather: int | None = Field(None, ge=0, description="soft edge width in pixels (operation default when omitted)")
    padding: float = Field(0.5, ge=0, description="context around the mask: <1 a fraction of its size, else pixels")
    working_size: int | None = Field(None, ge=64, description="model working size (model default when omitted)")
    refine_strength: float | None = Field(None, gt=0, lt=1, description="diffusion: strength of the tiles that "
                                          "refine a region generated more than 2x smaller than the image, at "
                                          "full resolution (0.35 when omitted; at most --strength)")
    no_refine: bool = Field(False, description="diffusion: do not refine large regions at full resolution "
                            "(one generation at the model's size, upscaled)")
    no_color_match: bool = Field(False, description="diffusion: keep the model's colours as they come (no "
                                 "correction of its colour drift against the photo)")
    prefill: Literal["lama", "telea", "none"] | None = Field(
        None, description="diffusion: fill the hole before generating, so the model starts from plausible "
        "context (default: lama for remove and outpaint, none for replace)")
    fast: bool = Field(False, description="few-step sampling through the diffusion model's distillation LoRA "
                       "(LCM for SD 1.5, TCD for SDXL, Turbo for FLUX.1 Fill): several times faster, a little less "
                       "detail; prompt-free removers (LaMa) are fast already")
    fast_lora: str | None = Field(None, description="the LoRA --fast uses: lcm-sd15, lcm-sdxl, tcd-sdxl, flux-turbo, "
                                  "a hub id, folder or .safetensors file (default: the model's)")
    deep_cache: bool = Field(False, description="diffusion with a UNet (SD 1.5, SDXL): reuse its deep features for two "
                             "of every three steps (DeepCache): about 2x faster at the default steps, slightly "
                             "different detail")
    inpainter: str | None = None
    remover: str | None = None

    @model_validator(mode="after")
    def _fast_lora_needs_fast(self) -> EditOptions:
        if self.fast_lora and not self.fast:
            raise ValueError("--fast-lora needs --fast")
        return self


class Limits(_Strict):
    """Limits that keep one request from taking the process down, passed to the Pipeline (the
    server fills them from ``serve --max-pixels``)."""

    max_pixels: int | None = Field(None, gt=0, description="largest image, mask or outpaint canvas in pixels "
                                   "(default: $PROMPTPAINT_MAX_PIXELS, else 64,000,000)")
    max_instances: int = Field(100, ge=1, description="most detections one request segments: past it only the "
                               "best-scoring are kept, and the result says so (a threshold of 0 finds hundreds of "
                               "boxes, and each becomes a full-resolution mask)")
    read_files: bool = Field(True, description="options may name image files on this machine (cutout "
                             "--background IMAGE); a server turns it off, so a request never reads its files")

    @property
    def pixel_limit(self) -> int:
        """The limit in force (the environment is read now, so a test or server can change it)."""
        from promptpaint.core.images import max_pixels_limit

        return max_pixels_limit(self.max_pixels)


def format_validation_error(error: ValidationError, where: str = "") -> str:
    """One line per problem, naming the option as the CLI spells it."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
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
