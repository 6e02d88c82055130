"""Open-vocabulary detectors through transformers: Grounding DINO and OWLv2.

Both detect every label of a request in ONE forward pass and return :class:`Detections` in the
original image's pixel coordinates, clamped to the image, with duplicates per label suppressed.
"""

from __future__ import annotations

import re
from typing import Protocol

import numpy as np

from promptpaint.backends.registry import ModelRef, cached, load_error, local_folder
from promptpaint.backends.runtime import pick_dtype
from promptpaint.core.geometry import clamp_boxes, nms
from promptpaint.core.types import Detections

NMS_IOU = 0.8


class Detector(Protocol):
    model_id: str

    def detect(self, image: np.ndarray, labels: list[str], box_threshold: float,
               text_threshold: float) -> Detections: ...


def _match_label(phrase: str, labels: list[str]) -> str | None:
    """Map the phrase the model produced back to one of the requested labels."""
    phrase = phrase.strip().lower()
    lowered = [label.lower() for label in labels]
    if phrase in lowered:
        return labels[lowered.index(phrase)]
    words = set(re.findall(r"\w+", phrase))
    if not words:
        return None
    overlap = [len(words & set(re.findall(r"\w+", label))) for label in lowered]
    best = int(np.argmax(overlap))
    return labels[best] if overlap[best] > 0 else None


def _finish(xyxy, scores, labels: list[str], size: tuple[int, int]) -> Detections:
    """Clamp to the image, drop empty boxes, suppress duplicates within each label."""
    xyxy = clamp_boxes(np.asarray(xyxy, np.float32), size)
    scores = np.asarray(scores, np.float32)
    ok = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    dets = Detections(xyxy[ok], scores[ok], [l for l, k in zip(labels, ok) if k], image_size=size)
    parts = []
    for label in dict.fromkeys(dets.labels):
        same = dets[np.array([l == label for l in dets.labels])]
        parts.append(same[nms(same.xyxy, same.scores, NMS_IOU)])
    out = Detections.concat(parts)
    return Detections(out.xyxy, out.scores, out.labels, image_size=size) if len(out) else Detections.empty(size)


class _TransformersDetector:
    def __init__(self, ref: ModelRef, device: str, dtype: str):
        folder = local_folder(ref)  # fails fast, before the slow library imports
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        self.ref = ref
        self.model_id = ref.id
        self.device = device
        self.dtype = pick_dtype(dtype, device, generative=False)
        try:
            self.processor = AutoProcessor.from_pretrained(folder)
            self.model = AutoModelForZeroShotObjectDetection.from_pretrained(
                folder, dtype=self.dtype, use_safetensors=True).to(device).eval()
        except Exception as error:  # noqa: BLE001
            raise load_error(ref, error) from error

    def _to_device(self, inputs):
        import torch

        return {k: (v.to(self.device, self.dtype) if torch.is_floating_point(v) else v.to(self.device))
                for k, v in inputs.items()}


class GroundingDinoDetector(_TransformersDetector):
    """Grounding DINO scores every query box against every text token. A box's label is the label
    whose tokens score highest (not the phrase of all tokens above a threshold, which glues
    labels together and loses boxes), so every label of the prompt can be answered."""

    def detect(self, image, labels, box_threshold, text_threshold):
        import torch
        from PIL import Image

        h, w = image.shape[:2]
        text = ". ".join(label.lower() for label in labels) + "."
        inputs = self.processor(images=Image.fromarray(image), text=text, return_tensors="pt")
        with torch.inference_mode():
            outputs = self.model(**self._to_device(inputs))
        probs = outputs.logits[0].float().sigmoid().cpu().numpy()  # (queries, text tokens)
        spans = self._label_spans(inputs["input_ids"][0].tolist(), len(labels))
        per_label = np.stack([probs[:, span].max(axis=1) if span else np.zeros(len(probs), np.float32)
                              for span in spans], axis=1)  # (queries, labels)
        best = per_label.argmax(axis=1)
        scores = per_label[np.arange(len(best)), best]
        keep = (probs.max(axis=1) > box_threshold) & (scores > text_threshold)
        cx, cy, bw, bh = outputs.pred_boxes[0].float().cpu().numpy().T
        xyxy = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], axis=1)
        return _finish(xyxy[keep], scores[keep], [labels[i] for i in best[keep]], (w, h))

    def _label_spans(self, ids: list[int], count: int) -> list[list[int]]:
        """Token positions of each '.'-separated label in the tokenised prompt."""
        tok = self.processor.tokenizer
        dot = tok.convert_tokens_to_ids(".")
        special = {i for i in (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id) if i is not None}
        spans: list[list[int]] = [[]]
        for pos, token in enumerate(ids):
            if token == dot:
                spans.append([])
            elif token not in special:
                spans[-1].append(pos)
        spans = [s for s in spans if s] + [[]] * count
        return spans[:count]


class Owlv2Detector(_TransformersDetector):
    def detect(self, image, labels, box_threshold, text_threshold):
        import torch
        from PIL import Image

        h, w = image.shape[:2]
        queries = [f"a photo of {label}" if len(label.split()) == 1 else label for label in labels]
        inputs = self.processor(text=[queries], images=Image.fromarray(image), return_tensors="pt")
        with torch.inference_mode():
            outputs = self.model(**self._to_device(inputs))
        outputs.logits = outputs.logits.float()
        outputs.pred_boxes = outputs.pred_boxes.float()
        # OWLv2 pads the image to a square at the bottom/right; given the real (h, w), transformers
        # scales boxes by max(h, w), which maps them back onto the unpadded image.
        result = self.processor.post_process_grounded_object_detection(
            outputs=outputs, threshold=box_threshold, target_sizes=[(h, w)])[0]
        indices = result["labels"].cpu().numpy().astype(int)
        boxes = result["boxes"].cpu().numpy().reshape(-1, 4)
        scores = result["scores"].cpu().numpy()
        return _finish(boxes, scores, [labels[i] for i in indices], (w, h))


def load_detector(ref: ModelRef, device: str, dtype: str) -> Detector:
    classes = {"grounding-dino": GroundingDinoDetector, "owlv2": Owlv2Detector}
    return cached(("detector", ref.source, device, dtype), lambda: classes[ref.family](ref, device, dtype))
