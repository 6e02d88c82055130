"""SAM 3 through transformers: text -> instance masks in one model (replaces detector + segmenter).

The image is encoded once (cached by content); all labels of a request then run as one batch
against that single encoding (the vision features are expanded as views, not copied).
Box and point prompts go to SAM 3's other half, its SAM-2-style tracker, loaded on first use
from the same checkpoint (see :class:`~promptpaint.backends.segmenters.Sam3TrackerSegmenter`).
Both halves read one ViT backbone (:class:`SharedBackbone`), which runs once per image even when
a request both finds from text and takes boxes or points.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
from torch import nn

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
    #: True when the checkpoint also holds SAM 3's tracker (facebook/sam3 does; set at load)
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
        self.dtype_name = dtype
        self._vision_cache = LRU(CACHE_SIZE)
        self._tracker_backend = None
        self._tracker_lock = threading.Lock()
        self.takes_boxes = self.takes_points = _has_tracker(self.folder)
        if self.takes_boxes:  # the tracker, once loaded, reads this backbone too: one run per image
            self.model.vision_encoder.backbone = SharedBackbone(self.model.vision_encoder.backbone)

    def _model_class(self):
        from transformers import Sam3Model

        return Sam3Model

    @property
    def encode_count(self) -> int:
        return self._vision_cache.computed

    def _vision(self, image: np.ndarray):
        return self._vision_cache.get_or_compute(image_hash(image), lambda: self._encode(image))

    def _encode(self, image: np.ndarray):
        from PIL import Image

        inputs = self.processor(images=Image.fromarray(image), return_tensors="pt")
        with torch.inference_mode():
            return self.model.get_vision_features(pixel_values=inputs["pixel_values"].to(self.device, self.dtype))

    def detect_and_segment(self, image: np.ndarray, labels: list[str], threshold: float | None = None) -> Detections:
        """Every instance of every label, with full-resolution masks (``threshold``: the score an
        instance needs; the default when None)."""
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
            keep = masks.reshape(len(masks), h * w).any(axis=1)  # an empty mask is no instance (none: 0 rows)
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
        """Box and point prompts through SAM 3's tracker (``Sam3TrackerModel``, SAM-2-style
        prompting), loaded from the same checkpoint on first use."""
        return self._tracker().segment(image, boxes=boxes, points=points)

    def _tracker(self):
        with self._tracker_lock:
            if self._tracker_backend is None:
                self._tracker_backend = self._load_tracker()
        return self._tracker_backend

    def _load_tracker(self):
        from promptpaint.backends.segmenters import Sam3TrackerSegmenter

        if not self.takes_boxes:
            raise UnsupportedOperationError(
                f"{self.model_id} holds only SAM 3's text detector, not its tracker: for --box or --point "
                "use the full facebook/sam3 checkpoint, or --segmenter sam-b or sam2-t")
        tracker = Sam3TrackerSegmenter(self.ref, self.device, self.dtype_name)
        # Both halves read the same ViT backbone weights from the checkpoint: keep one copy, which
        # runs once per image for both (see SharedBackbone).
        tracker.model.vision_encoder.backbone = self.model.vision_encoder.backbone
        return tracker

    @property
    def backbone_runs(self) -> int:
        """How many images went through the ViT backbone, both halves together."""
        backbone = self.model.vision_encoder.backbone
        return backbone.runs.computed if isinstance(backbone, SharedBackbone) else self.encode_count


class SharedBackbone(nn.Module):
    """SAM 3's ViT backbone as both halves call it, remembering its last outputs by input.

    The text detector and the tracker preprocess an image identically (one ``Sam3ImageProcessor``
    config in the checkpoint's folder), so when a request finds from text and also takes a box
    or points, the second half's backbone call gets the first's output instead of running the
    backbone (most of SAM 3's cost) again. Each half's neck still runs on its own."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.runs = LRU(CACHE_SIZE)

    def get_input_embeddings(self):
        return self.backbone.get_input_embeddings()

    def forward(self, pixel_values, **kwargs):
        if kwargs:  # e.g. asked for attentions: not what the cache holds
            return self.backbone(pixel_values, **kwargs)
        as_bytes = pixel_values.detach().contiguous().cpu().view(torch.uint8).numpy()
        key = (str(pixel_values.dtype), image_hash(as_bytes.reshape(*pixel_values.shape, -1)))
        return self.runs.get_or_compute(key, lambda: self.backbone(pixel_values))


def _has_tracker(folder: Path) -> bool:
    """Whether the checkpoint in ``folder`` holds SAM 3's tracker too: the full facebook/sam3
    (``sam3_video``) does, a detector-only export (``sam3``) does not."""
    import json

    config = json.loads((folder / "config.json").read_text())
    return config.get("model_type") == "sam3_video"


def load_sam3(ref: ModelRef, device: str, dtype: str) -> Sam3TextSegmenter:
    return cached(("sam3", ref.source, device, dtype), lambda: Sam3TextSegmenter(ref, device, dtype))
