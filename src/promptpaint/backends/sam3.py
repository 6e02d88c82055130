"""SAM 3 through transformers: text -> instance masks in one model (replaces detector + segmenter).

The image is encoded once (cached by content); all labels of a request then run as one batch
against that single encoding (the vision features are expanded as views, not copied).
"""

from __future__ import annotations

import numpy as np

from promptpaint.backends.base import LRU, TransformersBackend
from promptpaint.backends.registry import ModelRef, cached
from promptpaint.core.geometry import clamp_boxes
from promptpaint.core.images import image_hash
from promptpaint.core.types import Detections
from promptpaint.errors import UnsupportedOperationError

CACHE_SIZE = 4
MASK_THRESHOLD = 0.5


class Sam3TextSegmenter(TransformersBackend):
    """Both a segmenter that finds from text and a detector that returns masks."""

    finds_from_text = True
    takes_boxes = False
    takes_points = False
    batches = False
    returns_masks = True
    # Sam3Processor.post_process_instance_segmentation's default score threshold; SAM 3 has no
    # separate text threshold.
    default_box_threshold = 0.3
    default_text_threshold = None

    def __init__(self, ref: ModelRef, device: str, dtype: str):
        super().__init__(ref, device, dtype)
        self._vision_cache = LRU(CACHE_SIZE)

    def _model_class(self):
        from transformers import Sam3Model

        return Sam3Model

    @property
    def encode_count(self) -> int:
        return self._vision_cache.computed

    def _vision(self, image: np.ndarray):
        return self._vision_cache.get_or_compute(image_hash(image), lambda: self._encode(image))

    def _encode(self, image: np.ndarray):
        import torch
        from PIL import Image

        inputs = self.processor(images=Image.fromarray(image), return_tensors="pt")
        with torch.inference_mode():
            return self.model.get_vision_features(pixel_values=inputs["pixel_values"].to(self.device, self.dtype))

    def detect_and_segment(self, image: np.ndarray, labels: list[str], threshold: float | None = None) -> Detections:
        """Every instance of every label, with full-resolution masks (``threshold``: the score an
        instance needs; the default when None)."""
        import torch
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        threshold = self.default_box_threshold if threshold is None else threshold
        h, w = image.shape[:2]
        vision = self._vision(image)
        n = len(labels)

        def expand(t):
            return t.expand(n, *t.shape[1:])

        batched = Sam3VisionEncoderOutput(
            last_hidden_state=expand(vision.last_hidden_state),
            fpn_hidden_states=tuple(expand(t) for t in vision.fpn_hidden_states),
            fpn_position_encoding=tuple(expand(t) for t in vision.fpn_position_encoding),
        )
        text = self.processor(text=list(labels), return_tensors="pt", padding=True)
        with torch.inference_mode():
            outputs = self.model(vision_embeds=batched, input_ids=text["input_ids"].to(self.device),
                                 attention_mask=text["attention_mask"].to(self.device))
        for name in ("pred_logits", "pred_boxes", "pred_masks"):
            value = getattr(outputs, name, None)
            if value is not None:
                setattr(outputs, name, value.float())
        results = self.processor.post_process_instance_segmentation(
            outputs, threshold=threshold, mask_threshold=MASK_THRESHOLD, target_sizes=[(h, w)] * n)
        parts = []
        for label, result in zip(labels, results):
            masks = result["masks"].cpu().numpy().astype(bool).reshape(-1, h, w)
            keep = masks.reshape(len(masks), -1).any(axis=1)  # an empty mask is no instance
            if not keep.any():
                continue
            boxes = clamp_boxes(result["boxes"].cpu().numpy().reshape(-1, 4)[keep], (w, h))
            scores = result["scores"].cpu().numpy()[keep]
            parts.append(Detections(boxes, scores, [label] * int(keep.sum()), masks[keep], (w, h)))
        found = Detections.concat(parts)
        return found if len(found) else Detections.empty((w, h))

    def detect(self, image: np.ndarray, labels: list[str], box_threshold: float | None = None,
               text_threshold: float | None = None) -> Detections:
        """As a detector: every instance, with its mask (SAM 3 has no text threshold)."""
        return self.detect_and_segment(image, labels, box_threshold)

    def segment(self, image, boxes=None, points=None):
        raise UnsupportedOperationError("the SAM 3 backend here takes text prompts; for --box or --point "
                                        "choose --segmenter sam-b or sam2-t")


def load_sam3(ref: ModelRef, device: str, dtype: str) -> Sam3TextSegmenter:
    return cached(("sam3", ref.source, device, dtype), lambda: Sam3TextSegmenter(ref, device, dtype))
