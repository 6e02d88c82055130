"""COCO run-length encoding of masks, through pycocotools (the format every COCO tool reads)."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask


def encode(mask: np.ndarray) -> dict:
    """(H, W) bool -> ``{"size": [H, W], "counts": str}`` (compressed COCO RLE, JSON-safe)."""
    rle = coco_mask.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode(rle: dict) -> np.ndarray:
    """Inverse of :func:`encode`: returns an (H, W) bool mask."""
    counts = rle["counts"]
    data = {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return coco_mask.decode(data).astype(bool)
