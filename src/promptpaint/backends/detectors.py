"""Open-vocabulary detectors through transformers: Grounding DINO and OWLv2.

Both detect every label of a request in ONE forward pass and return :class:`Detections` in the
original image's pixel coordinates, clamped to the image, with duplicates per label suppressed.
"""

from __future__ import annotations

import numpy as np

from promptpaint.backends.base import LRU, TransformersBackend
from promptpaint.backends.protocols import Detector
from promptpaint.backends.registry import ModelRef, cached
from promptpaint.core.geometry import clamp_boxes, nms
from promptpaint.core.images import image_hash
from promptpaint.core.types import Detections

NMS_IOU = 0.8


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


class _TransformersDetector(TransformersBackend):
    """Runs the model once per (image, labels) and keeps the raw scores in a small cache, so
    moving a threshold slider re-filters without another forward pass."""

    returns_masks = False
    batches = True
    default_box_threshold: float
    default_text_threshold: float | None

    def __init__(self, ref: ModelRef, device: str, dtype: str):
        super().__init__(ref, device, dtype)
        self._raw = LRU(8)

    def _model_class(self):
        from transformers import AutoModelForZeroShotObjectDetection

        return AutoModelForZeroShotObjectDetection

    @property
    def forward_count(self) -> int:
        return self._raw.computed

    def detect(self, image, labels, box_threshold=None, text_threshold=None):
        """Boxes whose score passes ``box_threshold`` and whose best label passes ``text_threshold``
        (each the detector's default when None; a detector whose default text threshold is None
        has none, and ignores one given)."""
        box_threshold = self.default_box_threshold if box_threshold is None else box_threshold
        if self.default_text_threshold is None:
            text_threshold = None
        elif text_threshold is None:
            text_threshold = self.default_text_threshold
        h, w = image.shape[:2]
        raw = self._raw.get_or_compute((image_hash(image), tuple(labels)),
                                       lambda: self._forward([image], list(labels))[0])
        per_label, box_scores, xyxy = raw
        best = per_label.argmax(axis=1)
        scores = per_label[np.arange(len(best)), best]
        keep = box_scores > box_threshold
        if text_threshold is not None:
            keep &= scores > text_threshold
        return _finish(xyxy[keep], scores[keep], [labels[i] for i in best[keep]], (w, h))

    def detect_many(self, images: list[np.ndarray], labels: list[str]) -> None:
        """Run the images not yet cached through the model in batched forward passes, one per image
        size (images of one size need no padding, so each one's scores are those it gets alone,
        up to float rounding); :meth:`detect` then finds them in the cache."""
        todo = {(image_hash(im), tuple(labels)): im for im in images}
        todo = {key: im for key, im in todo.items() if key not in self._raw}
        self._raw.reserve(len(images))
        by_size: dict[tuple, dict] = {}
        for key, image in todo.items():
            by_size.setdefault(image.shape, {})[key] = image
        for group in by_size.values():
            for key, raw in zip(group, self._forward(list(group.values()), list(labels))):
                self._raw.put(key, raw)

    def _forward(self, images: list[np.ndarray], labels: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per image: (per-label scores (Q, L), box scores (Q,), boxes (Q, 4) in image pixels)."""
        raise NotImplementedError

    def _run(self, inputs):
        import torch

        with torch.inference_mode():
            return self.model(**self._to_device(inputs))


def _corners(cxcywh: np.ndarray, scale_w: float, scale_h: float) -> np.ndarray:
    cx, cy, bw, bh = cxcywh.T
    return np.stack([(cx - bw / 2) * scale_w, (cy - bh / 2) * scale_h,
                     (cx + bw / 2) * scale_w, (cy + bh / 2) * scale_h], axis=1).astype(np.float32)


class GroundingDinoDetector(_TransformersDetector):
    """Grounding DINO scores every query box against every text token. A label's score is the
    mean over its tokens (the GLIP/mmdet convention: "car" and "red car" do not tie on the token
    they share), and a box's label is the label scoring highest (not the phrase of all tokens
    above a threshold, which glues labels together and loses boxes), so every label of the prompt
    can be answered."""

    # The model card's example (IDEA-Research/grounding-dino-tiny and -base):
    # post_process_grounded_object_detection(..., threshold=0.4, text_threshold=0.3).
    # (The processor's own defaults are 0.25 and 0.25.)
    default_box_threshold = 0.4
    default_text_threshold = 0.3

    def _forward(self, images, labels):
        from PIL import Image

        # The processor's own way to join candidate labels: lower case, ". "-separated, final ".".
        text = ". ".join(label.lower() for label in labels) + "."
        inputs = self.processor(images=[Image.fromarray(im) for im in images], text=[text] * len(images),
                                return_tensors="pt")
        outputs = self._run(inputs)
        spans = self._label_spans(inputs["input_ids"][0].tolist(), len(labels))
        raws = []
        for i, image in enumerate(images):
            h, w = image.shape[:2]
            probs = outputs.logits[i].float().sigmoid().cpu().numpy()  # (queries, text tokens)
            boxes = _corners(outputs.pred_boxes[i].float().cpu().numpy(), w, h)
            raws.append((label_scores(probs, spans), probs.max(axis=1), boxes))
        return raws

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


def label_scores(probs: np.ndarray, spans: list[list[int]]) -> np.ndarray:
    """(queries, tokens) token probabilities -> (queries, labels): each label's mean over its
    tokens (0 for a label with no token, e.g. cut off by the text length limit)."""
    return np.stack([probs[:, span].mean(axis=1) if span else np.zeros(len(probs), np.float32)
                     for span in spans], axis=1).astype(np.float32)


class Owlv2Detector(_TransformersDetector):
    """OWLv2 scores every image patch's box against each text query; there is no separate text
    threshold (``text_threshold`` is ignored)."""

    # transformers' Owlv2 post_process_object_detection default; OWLv2 scores run far lower than
    # Grounding DINO's, so a shared threshold would lose most of its boxes.
    default_box_threshold = 0.1
    default_text_threshold = None
    #: One template for every label, as in the model card and the OWL-ViT paper's CLIP-style queries.
    QUERY_TEMPLATE = "a photo of a {}"

    def _forward(self, images, labels):
        from PIL import Image

        queries = [self.QUERY_TEMPLATE.format(label) for label in labels]
        # OWLv2 reads at most 16 text tokens: a longer query is cut rather than refused.
        inputs = self.processor(text=[queries] * len(images), images=[Image.fromarray(im) for im in images],
                                truncation=True, return_tensors="pt")
        outputs = self._run(inputs)
        raws = []
        for i, image in enumerate(images):
            per_label = outputs.logits[i].float().sigmoid().cpu().numpy()  # (patches, labels)
            # OWLv2 pads the image to a square at the bottom/right: boxes are relative to that square.
            side = max(image.shape[:2])
            boxes = _corners(outputs.pred_boxes[i].float().cpu().numpy(), side, side)
            raws.append((per_label, per_label.max(axis=1), boxes))
        return raws


def load_detector(ref: ModelRef, device: str, dtype: str) -> Detector:
    classes = {"grounding-dino": GroundingDinoDetector, "owlv2": Owlv2Detector}
    return cached(("detector", ref.source, device, dtype), lambda: classes[ref.family](ref, device, dtype))
