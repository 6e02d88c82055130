"""Prompt-free removers: LaMa exported to ONNX (onnxruntime) and OpenCV's Telea inpainting.

Both fill a hole from its surroundings at the crop's own resolution (no upscaling needed:
LaMa is resolution-robust); the pipeline only shrinks very large windows for them.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from promptpaint.backends.registry import ModelRef, cached, load_error, local_folder
from promptpaint.errors import ModelLoadError


class _Remover:
    needs_prompt = False
    upscale = False
    default_steps = 1
    default_guidance = 0.0
    working_size = 1024


class LamaRemover(_Remover):
    """LaMa ONNX (e.g. g-ronimo/lama): input ``[1, 4, H, W]`` = masked RGB in 0..1 + mask,
    output ``[1, 3, H, W]`` RGB in 0..1 (outputs in 0..255 are detected and accepted too)."""

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

    def inpaint(self, images, mask, *, progress=None, **_):
        m = mask.astype(np.float32)[None, None]
        outputs = []
        for image in images:
            rgb = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
            if self.two_inputs:
                feeds = {self.input_names[0]: rgb, self.input_names[1]: m}
            else:
                feeds = {self.input_names[0]: np.concatenate([rgb * (1 - m), m], axis=1)}
            out = self.session.run(None, feeds)[0][0].transpose(1, 2, 0)
            if out.max() <= 1.5:  # 0..1 output
                out = out * 255.0
            outputs.append(np.clip(np.rint(out), 0, 255).astype(np.uint8))
            if progress:
                progress(len(outputs), len(images))
        return outputs


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
