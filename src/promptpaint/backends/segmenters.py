"""Promptable segmenters through transformers: SAM and SAM 2 (box and point prompts).

The predictor pattern: an image is encoded once (cached by content, so later calls on the same
image reuse it), then every box of a request goes through ONE mask-decoder call, and of SAM's
three candidate masks per box the one with the best predicted IoU is kept. Masks come back at
the original resolution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from promptpaint.backends.base import LRU, TransformersBackend
from promptpaint.backends.protocols import Segmenter
from promptpaint.backends.registry import ModelRef, cached
from promptpaint.core.images import image_hash

EMBEDDING_CACHE_SIZE = 4


@dataclass
class _Encoded:
    embeddings: Any  # a tensor (SAM) or a list of multi-level tensors (SAM 2)
    original_size: tuple[int, int]  # (H, W)
    resized_size: tuple[int, int]  # (H, W) of the image the model saw, before padding


class _SamFamily(TransformersBackend):
    """Shared code for SAM and SAM 2 (they differ in post-processing only)."""

    takes_boxes = True
    takes_points = True
    finds_from_text = False
    batches = True

    def __init__(self, ref: ModelRef, device: str, dtype: str):
        super().__init__(ref, device, dtype)
        self._encoded = LRU(EMBEDDING_CACHE_SIZE)

    @property
    def encode_count(self) -> int:
        """How many images went through the image encoder."""
        return self._encoded.computed

    # -- encoding, once per image
    def encode(self, image: np.ndarray) -> _Encoded:
        return self._encoded.get_or_compute(image_hash(image), lambda: self._encode([image])[0])

    def encode_many(self, images: list[np.ndarray]) -> None:
        """Encode the images not yet cached in one batched forward pass (a batch runner calls this
        before segmenting them one by one; the encodings wait in the cache)."""
        todo = {image_hash(im): im for im in images}
        todo = {key: im for key, im in todo.items() if key not in self._encoded}
        self._encoded.reserve(len(images))
        if todo:
            for key, encoded in zip(todo, self._encode(list(todo.values()))):
                self._encoded.put(key, encoded)

    def _encode(self, images: list[np.ndarray]) -> list[_Encoded]:
        import torch
        from PIL import Image

        inputs = self.processor(images=[Image.fromarray(im) for im in images], return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.device, self.dtype)
        with torch.inference_mode():
            embeddings = self.model.get_image_embeddings(pixel_values)
        encoded = []
        for i, image in enumerate(images):
            h, w = image.shape[:2]
            if "reshaped_input_sizes" in inputs:  # SAM keeps the aspect and pads
                resized = tuple(int(v) for v in inputs["reshaped_input_sizes"][i])
            else:  # SAM 2 resizes to a square
                resized = tuple(int(v) for v in pixel_values.shape[-2:])
            # SAM gives one tensor, SAM 2 a list of multi-level ones: keep image i of each.
            mine = embeddings[i:i + 1] if torch.is_tensor(embeddings) else [e[i:i + 1] for e in embeddings]
            encoded.append(_Encoded(mine, (h, w), resized))
        return encoded

    # -- prompting, many times per image
    def segment(self, image, boxes=None, points=None):
        import torch

        enc = self.encode(image)
        h, w = enc.original_size
        sx, sy = enc.resized_size[1] / w, enc.resized_size[0] / h
        masks, scores = [], []
        with torch.inference_mode():
            if boxes is not None and len(boxes):
                scaled = np.asarray(boxes, np.float32).reshape(-1, 4) * np.array([sx, sy, sx, sy], np.float32)
                out = self.model(image_embeddings=enc.embeddings, multimask_output=True,
                                 input_boxes=torch.from_numpy(scaled)[None].to(self.device, self.dtype))
                m, s = self._best(out, enc)
                masks.append(m)
                scores.append(s)
            if points is not None and len(points):
                pts = np.asarray(points, np.float32).reshape(-1, 3)
                coords = pts[:, :2] * np.array([sx, sy], np.float32)
                out = self.model(
                    image_embeddings=enc.embeddings, multimask_output=True,
                    input_points=torch.from_numpy(coords)[None, None].to(self.device, self.dtype),
                    input_labels=torch.from_numpy(pts[:, 2].astype(np.int64))[None, None].to(self.device))
                m, s = self._best(out, enc)
                masks.append(m)
                scores.append(s)
        if not masks:
            return np.zeros((0, h, w), bool), np.zeros(0, np.float32)
        return np.concatenate(masks), np.concatenate(scores)

    def _best(self, out, enc: _Encoded) -> tuple[np.ndarray, np.ndarray]:
        """Keep, per prompt, the candidate mask with the highest predicted IoU, at full size."""
        iou = out.iou_scores[0].float()  # (N, 3)
        best = iou.argmax(dim=-1)
        pred = out.pred_masks[0].float()  # (N, 3, h, w) low-res logits
        chosen = pred[np.arange(len(best)), best][:, None]  # (N, 1, h, w)
        full = self._upscale(chosen[None], enc)  # (N, 1, H, W) bool
        return full[:, 0].cpu().numpy().astype(bool), iou.max(dim=-1).values.cpu().numpy()

    def _upscale(self, masks, enc: _Encoded):
        raise NotImplementedError


class SamSegmenter(_SamFamily):
    def _model_class(self):
        from transformers import SamModel

        return SamModel

    def _upscale(self, masks, enc):
        return self.processor.post_process_masks(
            masks.cpu(), [list(enc.original_size)], [list(enc.resized_size)], binarize=True)[0]


class Sam2Segmenter(_SamFamily):
    def _model_class(self):
        from transformers import Sam2Model

        return Sam2Model

    def _upscale(self, masks, enc):
        return self.processor.post_process_masks(masks.cpu(), [list(enc.original_size)], binarize=True)[0]


def load_segmenter(ref: ModelRef, device: str, dtype: str) -> Segmenter:
    classes = {"sam": SamSegmenter, "sam2": Sam2Segmenter}
    return cached(("segmenter", ref.source, device, dtype), lambda: classes[ref.family](ref, device, dtype))
