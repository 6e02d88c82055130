"""Promptable segmenters through transformers: SAM, SAM 2 and SAM 3's tracker (box and point
prompts).

The predictor pattern: an image is encoded once (cached by content, so later calls on the same
image reuse it), then the prompts of a request go through the mask decoder, those of one shape
(box or not, number of points) in ONE call. Masks come back at the original resolution.

How boxes and points combine (:func:`group_prompts`), following SAM's documented box+points
usage: every box is one object; a point joins the prompt of every box that contains it (so a
negative point cuts from that box's object); the points inside no box describe one more object
together when at least one of them is positive, and otherwise (negative points only) join every
box's prompt, where they can only cut. Points with no box and no positive point describe nothing
and are refused.

As segment-anything's ``SamPredictor`` advises, a single point is ambiguous and gets three
candidate masks of which the one with the best predicted IoU is kept (``multimask_output=True``);
a box, a box with points and two or more points get one mask (``multimask_output=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from promptpaint.backends.base import LRU, TransformersBackend
from promptpaint.backends.protocols import Segmenter
from promptpaint.backends.registry import ModelRef, cached
from promptpaint.core.images import image_hash
from promptpaint.errors import InvalidOptionError

EMBEDDING_CACHE_SIZE = 4
UPSCALE_CHUNK = 8  # masks brought to full resolution at once


@dataclass(frozen=True, eq=False)
class Prompt:
    """One object to cut out: a box, points, or a box and points."""

    box: np.ndarray | None  # (4,) x0, y0, x1, y1
    points: np.ndarray  # (P, 3) x, y, label; P may be 0

    @property
    def multimask(self) -> bool:
        """A single point is ambiguous (part or whole?): ask for three masks, keep the best."""
        return self.box is None and len(self.points) == 1

    @property
    def shape_key(self) -> tuple[bool, int]:
        """Prompts with equal keys share one decoder call."""
        return self.box is not None, len(self.points)


def group_prompts(boxes: np.ndarray | None, points: np.ndarray | None) -> list[Prompt]:
    """Boxes and points -> prompts, one per object (see the module's docstring for the rule)."""
    boxes = np.zeros((0, 4), np.float64) if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
    points = np.zeros((0, 3), np.float64) if points is None else np.asarray(points, np.float64).reshape(-1, 3)
    inside = ((points[:, None, 0] >= boxes[None, :, 0]) & (points[:, None, 0] <= boxes[None, :, 2])
              & (points[:, None, 1] >= boxes[None, :, 1]) & (points[:, None, 1] <= boxes[None, :, 3]))  # (P, N)
    free = points[~inside.any(axis=1)]
    free_positive = bool((free[:, 2] > 0).any())
    if len(points) and not len(boxes) and not free_positive:
        raise InvalidOptionError("the points have no positive point (x,y,1) and there is no box: "
                                 "nothing to select")
    prompts = []
    for i, box in enumerate(boxes):
        joined = points[inside[:, i]]
        if not free_positive:
            joined = np.concatenate([joined, free])
        prompts.append(Prompt(box, joined))
    if free_positive:
        prompts.append(Prompt(None, free))
    return prompts


@dataclass
class _Encoded:
    embeddings: Any  # a tensor (SAM) or a list of multi-level tensors (SAM 2, SAM 3's tracker)
    original_size: tuple[int, int]  # (H, W)
    resized_size: tuple[int, int]  # (H, W) of the image the model saw, before padding


class _SamFamily(TransformersBackend):
    """Shared code for SAM, SAM 2 and SAM 3's tracker (they differ in how prompt coordinates are
    scaled and in post-processing only)."""

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

        prompts = group_prompts(boxes, points)
        enc = self.encode(image)
        h, w = enc.original_size
        if not prompts:
            return np.zeros((0, h, w), bool), np.zeros(0, np.float32)
        masks: list[np.ndarray] = [np.zeros(0)] * len(prompts)
        scores = np.zeros(len(prompts), np.float32)
        groups: dict[tuple[bool, int], list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault(prompt.shape_key, []).append(i)
        with torch.inference_mode():
            for indices in groups.values():
                group = [prompts[i] for i in indices]
                out = self.model(image_embeddings=enc.embeddings, multimask_output=group[0].multimask,
                                 **self._prompt_inputs(enc, group))
                m, s = self._best(out, enc)
                for j, i in enumerate(indices):
                    masks[i], scores[i] = m[j], s[j]
        return np.stack(masks), scores

    def _prompt_inputs(self, enc: _Encoded, group: list[Prompt]) -> dict:
        """The model's ``input_boxes`` / ``input_points`` / ``input_labels`` for prompts of one
        shape, scaled to the model's input exactly as the family's processor scales them."""
        raise NotImplementedError

    def _best(self, out, enc: _Encoded) -> tuple[np.ndarray, np.ndarray]:
        """Keep, per prompt, the candidate mask with the highest predicted IoU, at full size."""
        iou = out.iou_scores[0].float()  # (N, 1 or 3)
        best = iou.argmax(dim=-1)
        pred = out.pred_masks[0].float()  # (N, 1 or 3, h, w) low-res logits
        chosen = pred[np.arange(len(best)), best][:, None]  # (N, 1, h, w)
        # Upscaled a few at a time: the processor works in float32 at full size (48 MB per mask
        # of a 12 MP photo), and each mask is upscaled on its own anyway.
        full = [self._upscale(chosen[i:i + UPSCALE_CHUNK][None], enc)[:, 0].cpu().numpy().astype(bool)
                for i in range(0, len(chosen), UPSCALE_CHUNK)]  # (n, H, W) each
        return np.concatenate(full), iou.max(dim=-1).values.cpu().numpy()

    def _upscale(self, masks, enc: _Encoded):
        raise NotImplementedError


def _nested(group: list[Prompt]) -> dict:
    """Prompts as the processors' nested lists: [image][object][point][x, y] and so on."""
    nested: dict = {}
    if group[0].box is not None:
        nested["input_boxes"] = [[p.box.tolist() for p in group]]
    if len(group[0].points):
        nested["input_points"] = [[p.points[:, :2].tolist() for p in group]]
        nested["input_labels"] = [[p.points[:, 2].astype(int).tolist() for p in group]]
    return nested


class SamSegmenter(_SamFamily):
    def _model_class(self):
        from transformers import SamModel

        return SamModel

    def _prompt_inputs(self, enc, group):
        """SamProcessor's arithmetic (it needs the image to run, so it is repeated here): float64
        coordinates times (resized / original) per axis, boxes first rounded to float32."""
        import torch

        (h, w), (new_h, new_w) = enc.original_size, enc.resized_size
        scale = np.array([new_w / w, new_h / h])
        # float64 as the processor hands them to the model; MPS has no float64.
        dtype = torch.float32 if self.device == "mps" else torch.float64
        nested = _nested(group)
        inputs = {}
        if "input_boxes" in nested:
            boxes = np.asarray(nested["input_boxes"][0], np.float32).astype(np.float64).reshape(-1, 2, 2) * scale
            inputs["input_boxes"] = torch.from_numpy(boxes.reshape(1, -1, 4)).to(self.device, dtype)
        if "input_points" in nested:
            points = np.asarray(nested["input_points"][0], np.float64) * scale
            inputs["input_points"] = torch.from_numpy(points[None]).to(self.device, dtype)
            inputs["input_labels"] = torch.tensor(nested["input_labels"], dtype=torch.int64, device=self.device)
        return inputs

    def _upscale(self, masks, enc):
        return self.processor.post_process_masks(
            masks.cpu(), [list(enc.original_size)], [list(enc.resized_size)], binarize=True)[0]


class Sam2Segmenter(_SamFamily):
    def _model_class(self):
        from transformers import Sam2Model

        return Sam2Model

    def _prompt_inputs(self, enc, group):
        """Sam2Processor scales prompts from the original size alone (its documented use with
        precomputed image embeddings)."""
        inputs = self.processor(original_sizes=[list(enc.original_size)], return_tensors="pt", **_nested(group))
        return {k: v.to(self.device) for k, v in inputs.items() if k.startswith("input_")}

    def _upscale(self, masks, enc):
        return self.processor.post_process_masks(masks.cpu(), [list(enc.original_size)], binarize=True)[0]


class Sam3TrackerSegmenter(Sam2Segmenter):
    """SAM 3's promptable (SAM-2-style) half: box and point prompts, loaded from the same
    checkpoint as SAM 3's text detector (``facebook/sam3``)."""

    def _model_class(self):
        from transformers import Sam3TrackerModel

        return Sam3TrackerModel

    def _processor_class(self):
        from transformers import Sam3TrackerProcessor

        return Sam3TrackerProcessor


def load_segmenter(ref: ModelRef, device: str, dtype: str) -> Segmenter:
    classes = {"sam": SamSegmenter, "sam2": Sam2Segmenter}
    return cached(("segmenter", ref.source, device, dtype), lambda: classes[ref.family](ref, device, dtype))
