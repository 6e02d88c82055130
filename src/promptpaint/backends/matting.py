"""Matting models: alpha in the unknown band of a trimap. transformers' ViTMatte
(``VitMatteForImageMatting``, e.g. hustvl/vitmatte-small-composition-1k).

ViTMatte is trained on 512-px crops and runs at any size padded to a multiple of 32; its global
attention grows with the square of the pixel count, so a large photo is matted in windows at its
own resolution (never squashed): only windows that contain unknown pixels run, and overlapping
windows are blended (:mod:`promptpaint.core.alpha`).
"""

from __future__ import annotations

import numpy as np

from promptpaint.backends.base import TransformersBackend
from promptpaint.backends.protocols import Matter
from promptpaint.backends.registry import ModelRef, cached
from promptpaint.core import alpha as A


class VitMatte(TransformersBackend):
    """ViTMatte as a :class:`~promptpaint.backends.protocols.Matter`: one processor + model pass
    per window, the padding cropped off."""

    family = "vitmatte"
    window = 1024  # 64x64 tokens: a 4096-token global attention, well inside a CPU's memory
    overlap = 128
    context = 64
    multiple = 32  # the image processor pads to this (size_divisor)

    def _model_class(self):
        from transformers import VitMatteForImageMatting

        return VitMatteForImageMatting

    def matte(self, image, trimap, *, progress=None):
        if image.shape[:2] != trimap.shape:
            raise ValueError(f"trimap {trimap.shape} does not match the image {image.shape[:2]}")
        windows = A.matting_windows(trimap == A.UNKNOWN, self.window, self.overlap, self.context, self.multiple)
        values = []
        for window in windows:
            values.append(self.predict(image[window.slices], trimap[window.slices]))
            if progress:
                progress(len(values), len(windows))
        return A.blend_windows(trimap.shape, windows, values, self.overlap)

    def predict(self, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        """One window through the processor (rescale, normalise, pad) and the model; float32 (h, w)."""
        import torch

        inputs = self.processor(images=image, trimaps=trimap, return_tensors="pt")
        with torch.inference_mode():
            alphas = self.model(pixel_values=inputs["pixel_values"].to(self.device, self.dtype)).alphas
        height, width = trimap.shape
        return alphas[0, 0, :height, :width].float().cpu().numpy()  # the padding is bottom-right


def load_matter(ref: ModelRef, device: str, dtype: str) -> Matter:
    return cached(("matter", ref.source, device, dtype), lambda: VitMatte(ref, device, dtype))
