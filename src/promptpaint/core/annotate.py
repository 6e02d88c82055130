"""Pictures for people: boxes, labels, scores and a mask tint drawn over an image."""

from __future__ import annotations

import cv2
import numpy as np

from promptpaint.core.types import Detections

TINT = np.array([255, 64, 160], np.float32)  # magenta reads well over most photos
PALETTE = [(255, 196, 0), (0, 200, 255), (120, 255, 90), (255, 90, 90), (200, 120, 255), (255, 255, 255)]


def overlay(image: np.ndarray, detections: Detections | None = None, mask: np.ndarray | None = None,
            excluded: Detections | None = None, alpha: float = 0.45) -> np.ndarray:
    """A copy of ``image`` with ``mask`` tinted and each detection's box, label and score drawn."""
    out = image.astype(np.float32)
    if mask is not None and mask.any():
        out[mask] = out[mask] * (1 - alpha) + TINT * alpha
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    scale = max(0.4, min(image.shape[:2]) / 900)
    thickness = max(1, int(round(2 * scale)))
    for dets, dashed in ((detections, False), (excluded, True)):
        if dets is None:
            continue
        for i, (box, score, label) in enumerate(zip(dets.xyxy, dets.scores, dets.labels)):
            colour = (255, 60, 60) if dashed else PALETTE[i % len(PALETTE)]
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), colour, thickness)
            text = f"{'-' if dashed else ''}{label} {score:.2f}"
            (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, thickness)
            ty = max(th + base, y0)
            cv2.rectangle(out, (x0, ty - th - base), (x0 + tw, ty), colour, -1)
            cv2.putText(out, text, (x0, ty - base), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 0, 0), thickness,
                        cv2.LINE_AA)
    return out
