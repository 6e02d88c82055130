"""JSON views of the typed records (used by the CLI's files and the HTTP API alike)."""

from __future__ import annotations

import re
from typing import Any

from promptpaint.core import rle
from promptpaint.core.types import Detections, Segmentation


def safe_name(text: str, limit: int = 40) -> str:
    """A label turned into a file-name fragment: letters, digits, '-' only."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:limit].lower() or "item"


def detections_to_json(dets: Detections, with_masks: bool = True) -> list[dict[str, Any]]:
    items = []
    for i in range(len(dets)):
        item: dict[str, Any] = {
            "label": dets.labels[i],
            "score": round(float(dets.scores[i]), 4),
            "box": [round(float(v), 2) for v in dets.xyxy[i]],
        }
        if with_masks and dets.masks is not None:
            item["area"] = int(dets.masks[i].sum())
            item["rle"] = rle.encode(dets.masks[i])
        items.append(item)
    return items


def detect_to_json(dets: Detections) -> dict[str, Any]:
    """What ``detect`` answers: the image size, how the boxes were found (detector, thresholds
    used) and the boxes."""
    return {"image_size": list(dets.image_size or ()), **dets.info,
            "detections": detections_to_json(dets, with_masks=False)}


def segmentation_to_json(seg: Segmentation) -> dict[str, Any]:
    return {
        **seg.info,
        "instances": detections_to_json(seg.detections),
        "excluded": detections_to_json(seg.excluded),
        "mask": rle.encode(seg.mask),
        "mask_area": int(seg.mask.sum()),
    }
