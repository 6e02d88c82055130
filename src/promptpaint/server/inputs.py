"""Turning an HTTP request into (image, mask, options).

Two request shapes carry the same things:

* ``multipart/form-data``: an ``image`` file (or an ``image_id`` from ``POST /v1/images``), an
  optional ``mask`` file, an ``options`` field holding a JSON object, and/or one form field per
  option (``find=cat``; repeat a field for a list);
* ``application/json``: ``{"image": base64 | "image_id": id, "mask": base64, "options": {...}}``.

Option names and values are exactly those of the CLI and the option models in
:mod:`promptpaint.options`. Nothing in a request ever names a file on the server: images and
masks arrive as bytes, and the ``mask`` *option* (a path) is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from promptpaint.core.images import LoadedImage, load_mask
from promptpaint.core.serialize import safe_name
from promptpaint.errors import InvalidOptionError
from promptpaint.server.state import ServerState

FILE_PARTS = ("image", "mask")
RESERVED = ("image", "image_id", "mask", "options")
MAX_FIELD_BYTES = 256 * 1024  # one non-file form field (the options JSON is the largest)


class JsonBody(BaseModel):
    """The JSON request shape."""

    model_config = ConfigDict(extra="forbid")

    image: str | None = None  # base64 of the encoded file
    image_id: str | None = None
    mask: str | None = None  # base64 of a mask image
    mask_name: str = "mask.png"
    options: dict[str, Any] = {}


@dataclass
class RawInput:
    """What the request carried, before decoding."""

    image_bytes: bytes | None
    image_id: str | None
    mask_bytes: bytes | None
    mask_name: str | None
    options: dict[str, Any]


@dataclass
class Input:
    """A decoded request: the image, its id in the store, the uploaded mask, the options (where
    ``mask``, if present, is the upload's name: it tells the option models a mask was given, and
    is never a path to open)."""

    image: LoadedImage
    image_id: str
    mask: np.ndarray | None
    options: dict[str, Any]


async def read_raw(request: Request) -> RawInput:
    """Read the body (multipart, urlencoded or JSON) without decoding any image."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return _from_json(await request.body())
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        async with request.form(max_files=len(FILE_PARTS), max_part_size=MAX_FIELD_BYTES) as form:
            return await _from_form(form)
    if not content_type and not await request.body():
        return RawInput(None, None, None, None, {})
    raise InvalidOptionError(f"unsupported content type {content_type or 'none'!r}; send multipart/form-data "
                             "or application/json")


async def read_input(request: Request, state: ServerState) -> Input:
    """Read and decode a request's image and mask; check the options name no path or banned model."""
    raw = await read_raw(request)
    check_options(raw.options, state)
    state.jobs.check_capacity()  # refuse before decoding anything when the queue is full anyway
    image, image_id = await resolve_image(raw, state)
    mask, options = None, dict(raw.options)
    if raw.mask_bytes is not None:
        mask = await run_in_threadpool(load_mask, raw.mask_bytes, image.size,
                                       max_pixels=state.pipeline.limits.max_pixels)
        # The option models see a mask was given (a target); the decoded array passed beside it is
        # what the pipeline uses (and the recipe records, as RLE), so the name is never opened.
        options["mask"] = raw.mask_name
    return Input(image, image_id, mask, options)


def check_options(options: dict[str, Any], state: ServerState) -> None:
    """No file path (the mask option) and no model the server was not started to allow."""
    if "mask" in options:
        raise InvalidOptionError("the mask option names a file and is not accepted over HTTP; "
                                 "upload the mask image as the 'mask' file part instead")
    state.check_models(options)


async def resolve_image(raw: RawInput, state: ServerState) -> tuple[LoadedImage, str]:
    """The request's image: looked up by image_id, or decoded from the upload and stored."""
    if raw.image_bytes is not None and raw.image_id:
        raise InvalidOptionError("give either an image upload or an image_id, not both")
    if raw.image_id:
        return state.images.get(raw.image_id), raw.image_id
    if raw.image_bytes is None:
        raise InvalidOptionError("no image: upload one as the 'image' file part, or pass an image_id")
    loaded = await run_in_threadpool(state.pipeline.load, raw.image_bytes)
    return loaded, state.images.add(loaded)


# ------------------------------------------------------------------------------ request shapes
async def _from_form(form: FormData) -> RawInput:
    for name in FILE_PARTS:
        value = form.get(name)
        if value is not None and not isinstance(value, UploadFile):
            raise InvalidOptionError(f"{name} must be uploaded as a file part; text (e.g. a file path) "
                                     "is not accepted")
    image, mask = form.get("image"), form.get("mask")
    options = _parse_options_json(form.get("options")) if form.get("options") is not None else {}
    for key in dict.fromkeys(form.keys()):
        if key in RESERVED:
            continue
        if key in options:
            raise InvalidOptionError(f"option {key!r} is given twice (as a field and inside 'options')")
        values = form.getlist(key)
        options[key] = values[0] if len(values) == 1 else list(values)
    image_id = form.get("image_id")
    return RawInput(
        image_bytes=await image.read() if image is not None else None,
        image_id=str(image_id) if image_id else None,
        mask_bytes=await mask.read() if mask is not None else None,
        mask_name=_safe_filename(mask.filename) if mask is not None else None,
        options=options,
    )


def _from_json(body: bytes) -> RawInput:
    try:
        data = json.loads(body or b"{}")
    except ValueError as error:
        raise InvalidOptionError(f"the body is not valid JSON: {error}") from None
    try:
        parsed = JsonBody.model_validate(data)
    except ValidationError as error:
        raise InvalidOptionError("; ".join(_describe(item) for item in error.errors())) from None
    return RawInput(
        image_bytes=_b64("image", parsed.image) if parsed.image is not None else None,
        image_id=parsed.image_id,
        mask_bytes=_b64("mask", parsed.mask) if parsed.mask is not None else None,
        mask_name=_safe_filename(parsed.mask_name) if parsed.mask is not None else None,
        options=dict(parsed.options),
    )


def _parse_options_json(text: Any) -> dict[str, Any]:
    try:
        options = json.loads(text)
    except (TypeError, ValueError) as error:
        raise InvalidOptionError(f"the options field must be a JSON object: {error}") from None
    if not isinstance(options, dict):
        raise InvalidOptionError("the options field must be a JSON object, e.g. {\"find\": \"cat\"}")
    return options


def _b64(name: str, text: str) -> bytes:
    if "," in text[:100] and text.startswith("data:"):
        text = text.split(",", 1)[1]  # accept data: URLs as well
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidOptionError(f"{name} must be base64-encoded image bytes") from None


def _describe(item: dict) -> str:
    where = ".".join(str(p) for p in item["loc"])
    message = "unknown field" if item["type"] == "extra_forbidden" else item["msg"]
    return f"{where}: {message}" if where else message


def _safe_filename(name: str | None) -> str:
    """The upload's base name, as the ``mask`` option's value (never opened)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    stem, _, suffix = base.rpartition(".")
    return f"{safe_name(stem or 'mask')}.png" if base else "mask.png"
