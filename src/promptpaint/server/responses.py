"""Results as HTTP payloads: PNG bytes (the recipe in the PNG's text chunk, as the CLI writes
it) or JSON with base64 PNGs and the recipe. CPU work here runs outside the model queue."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from promptpaint.core.images import LoadedImage, encode_image, encode_mask
from promptpaint.core.serialize import detect_to_json, segmentation_to_json
from promptpaint.core.types import Detections, EditResult, Segmentation
from promptpaint.operations import Operation
from promptpaint.pipeline.output import encode_variant
from promptpaint.pipeline.recipe import missing_phrases, variant_recipe


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


mask_png = encode_mask  # 255 = selected, as save_mask writes it


# ------------------------------------------------------------------------------ edits
def variant_recipes(entry: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """One replayable recipe per variant (as the CLI and the batch runner record them)."""
    return [variant_recipe(entry, i) for i in range(count)]


def edit_png(result: EditResult, variant: int = 0) -> bytes:
    """One variant as PNG, as the output writer makes it: its own replayable recipe (an uploaded
    mask is in it as COCO RLE), alpha and the input's colour profile."""
    return encode_variant(result, variant)


def edit_json(result: EditResult, image_id: str) -> dict[str, Any]:
    entry = result.recipe
    recipes = variant_recipes(entry, len(result.variants))
    variants = [{"image_png": b64(encode_variant(result, i)), "seed": recipe["edits"][0]["seed"], "recipe": recipe}
                for i, recipe in enumerate(recipes)]
    height, width = result.image.shape[:2]
    return {"image_id": image_id, "width": width, "height": height, "op": entry.get("op"),
            "mask_png": b64(mask_png(result.mask)), "mask_area": int(result.mask.sum()),
            "recipe": {"edits": [entry]}, "variants": variants, "info": _plain(result.info),
            "missing": missing_phrases(entry)}


# ------------------------------------------------------------------------------ selection
def segment_json(seg: Segmentation, image: LoadedImage, image_id: str, overlay: bool) -> dict[str, Any]:
    data = segmentation_to_json(seg)
    data.update({"image_id": image_id, "width": image.size[0], "height": image.size[1],
                 "mask_png": b64(mask_png(seg.mask))})
    if overlay:
        from promptpaint.core.annotate import overlay as draw_overlay

        drawn = draw_overlay(image.rgb, seg.detections, seg.mask, seg.excluded)
        data["overlay_png"] = b64(encode_image(drawn))
    return data


def detect_json(dets: Detections, image_id: str) -> dict[str, Any]:
    """As ``promptpaint detect`` prints it (detector and thresholds used included), plus the image_id."""
    return {"image_id": image_id, **detect_to_json(dets)}


# ------------------------------------------------------------------------------ the registry
def operation_json(operation: Operation) -> dict[str, Any]:
    """What the page needs to offer an operation: its name, a summary, whether it edits a
    selection (takes find/box/point/a mask upload), and its options' JSON schema."""
    schema = operation.options.model_json_schema()
    for name in ("op", "mask", *operation.unused_options):  # the op is the route; masks come only as uploads
        schema["properties"].pop(name, None)
    return {"name": operation.name, "summary": operation.summary(), "takes_selection": operation.takes_selection,
            "route": f"/v1/{operation.name}", "options": schema}


def _plain(value: Any) -> Any:
    """JSON-safe copy of an info dict (numpy scalars and tuples included)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
