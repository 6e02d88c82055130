"""Prompt-free removers: LaMa exported to ONNX (onnxruntime) and OpenCV's Telea inpainting.

Both fill a hole from its surroundings at the crop's own resolution (no upscaling needed:
LaMa is resolution-robust); the pipeline only shrinks very large windows for them. LaMa exports
with a fixed input size (the common ``lama_fp32.onnx``, 512x512) get each crop resized to that
size and the result resized back.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from promptpaint.backends.registry import ModelRef, cached, load_error, local_folder
from promptpaint.core import masks as M
from promptpaint.core.images import resize_image
from promptpaint.errors import ModelLoadError


class _Remover:
    """Fills from the surroundings: no prompt, no steps, no guidance, no strength."""

    needs_prompt = False
    takes_negative_prompt = False
    upscale = False
    batches = False
    default_steps = None
    default_guidance = None
    default_strength = None
    working_size = 1024


class LamaRemover(_Remover):
    """LaMa ONNX. Two interfaces are accepted:

    - one input ``[1, 4, H, W]`` = masked RGB in 0..1 + mask (e.g. g-ronimo/lama);
    - two inputs ``image`` ``[1, 3, H, W]`` RGB in 0..1 and ``mask`` ``[1, 1, H, W]`` (1 = fill)
      (e.g. Carve/LaMa-ONNX ``lama_fp32.onnx``, fixed at 512x512).

    Output ``[1, 3, H, W]`` RGB in 0..1 or 0..255 (detected). When the export fixes H and W, crops
    are resized to that size and back; only the hole matters, the pipeline blends by the mask.
    """

    family = "lama"
    multiple = 32

    def __init__(self, ref: ModelRef, device: str):
        import onnxruntime as ort

        self.model_id = ref.id
        folder = local_folder(ref)
        files = sorted(Path(folder).glob("*.onnx"))
        preferred = [f for f in files if f.name == "lama.onnx"] or files
        if not preferred:
            raise ModelLoadError(f"no .onnx file in {folder} for the LaMa remover")
        providers = ["CPUExecutionProvider"]
        if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(preferred[0]), options, providers=providers)
        except Exception as error:  # noqa: BLE001
            raise load_error(ref, error) from error
        inputs = self.session.get_inputs()
        self.two_inputs = len(inputs) == 2  # older exports take (image, mask) separately
        self.input_names = [i.name for i in inputs]
        self.fixed_size = fixed_input_size(inputs[0].shape)  # (w, h), or None for dynamic sides

    def inpaint(self, images, mask, *, progress=None, **_):
        outputs = []
        for image in images:
            outputs.append(self._fill(image, mask))
            if progress:
                progress(len(outputs), len(images))
        return outputs

    def _fill(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One crop at its own size; through the model's fixed size when it has one."""
        size = (image.shape[1], image.shape[0])
        if self.fixed_size is None or size == self.fixed_size:
            return self._run(image, mask)
        filled = self._run(resize_image(image, self.fixed_size), M.resize_mask(mask, self.fixed_size))
        return resize_image(filled, size)

    def _run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        m = mask.astype(np.float32)[None, None]
        rgb = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        if self.two_inputs:
            feeds = {self.input_names[0]: rgb, self.input_names[1]: m}
        else:
            feeds = {self.input_names[0]: np.concatenate([rgb * (1 - m), m], axis=1)}
        out = self.session.run(None, feeds)[0][0].transpose(1, 2, 0)
        if out.max() <= 1.5:  # 0..1 output
            out = out * 255.0
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def fixed_input_size(shape: list) -> tuple[int, int] | None:
    """``(width, height)`` when an ONNX input ``[N, C, H, W]`` has fixed spatial sides, else None
    (dynamic sides are names or None)."""
    if len(shape) != 4:
        return None
    h, w = shape[2], shape[3]
    return (w, h) if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0 else None


class TeleaRemover(_Remover):
    """OpenCV's fast-marching inpainting (Telea 2004): no download, fine for small defects."""

    family = "telea"
    multiple = 1
    model_id = "opencv:telea"
    radius = 5

    def inpaint(self, images, mask, *, progress=None, **_):
        m = mask.astype(np.uint8) * 255
        return [cv2.inpaint(np.ascontiguousarray(im), m, self.radius, cv2.INPAINT_TELEA) for im in images]


def load_remover(ref: ModelRef, device: str):
    if ref.family == "telea":
        return TeleaRemover()
    return cached(("remover", ref.source, device), lambda: LamaRemover(ref, device))
