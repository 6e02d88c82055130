"""Prompt-free removers: LaMa exported to ONNX (onnxruntime) and OpenCV's Telea inpainting.

Both fill a hole from its surroundings at the crop's own resolution (no upscaling needed:
LaMa is resolution-robust); the pipeline only shrinks very large windows for them. LaMa exports
with a fixed input size (the common ``lama_fp32.onnx``, 512x512) get each crop padded to that
size's aspect (reflected context, never squashed), resized to it, and the result resized back
with the padding cut off.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from promptpaint.backends.registry import ModelRef, cached, load_error, local_folder
from promptpaint.core import masks as M
from promptpaint.core.images import resize_image
from promptpaint.errors import ModelLoadError

#: The side of the mid-grey square that tells a dynamic export's output scale at load.
PROBE_SIDE = 64


class _Remover:
    """Fills from the surroundings: no prompt, no steps, no guidance, no strength."""

    needs_prompt = False
    takes_negative_prompt = False
    upscale = False
    batches = False
    default_steps = None
    default_guidance = None
    default_strength = None
    scheduler = None
    lora = None
    has_fast_mode = False  # one pass, fast already
    shows_previews = False
    caches_features = False
    working_size = 1024
    #: The least context (pixels per side) a window should give the model around a hole.
    min_context = 0


class LamaRemover(_Remover):
    """LaMa ONNX. Two interfaces are accepted:

    - one input ``[1, 4, H, W]`` = masked RGB in 0..1 + mask (e.g. g-ronimo/lama);
    - two inputs ``image`` ``[1, 3, H, W]`` RGB in 0..1 and ``mask`` ``[1, 1, H, W]`` (1 = fill)
      (e.g. Carve/LaMa-ONNX ``lama_fp32.onnx``, fixed at 512x512).

    Output ``[1, 3, H, W]`` RGB in 0..1 or 0..255: which one is measured once at load
    (:attr:`output_scale`), never guessed per crop (a dark crop in 0..255 looks like 0..1).
    """

    family = "lama"
    multiple = 32
    #: LaMa was trained on 256 px crops: a small hole needs that much around it to be filled
    #: from its surroundings rather than from a few pixels of border.
    min_context = 256

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
            inputs = self.session.get_inputs()
            self.two_inputs = len(inputs) == 2  # older exports take (image, mask) separately
            self.input_names = [i.name for i in inputs]
            self.fixed_size = fixed_input_size(inputs[0].shape)  # (w, h), or None for dynamic sides
            self.output_scale = self._probe_scale()
        except Exception as error:  # noqa: BLE001
            raise load_error(ref, error) from error

    def _probe_scale(self) -> float:
        """What the export returns for white: 1.0 or 255.0. A mid-grey image with nothing to
        fill comes back as itself, about 0.5 or about 127.5; halfway between (in ratio) decides."""
        w, h = self.fixed_size or (PROBE_SIDE, PROBE_SIDE)
        grey = np.full((h, w, 3), 128, np.uint8)
        out = self._forward(grey, np.zeros((h, w), bool))
        return 255.0 if float(np.median(out)) > 8.0 else 1.0

    def inpaint(self, images, mask, *, progress=None, **_):
        outputs = []
        for image in images:
            outputs.append(self._fill(image, mask))
            if progress:
                progress(len(outputs), len(images))
        return outputs

    def _fill(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One crop at its own size; through the model's fixed size when it has one."""
        if self.fixed_size is None or image.shape[1::-1] == self.fixed_size:
            return self._run(image, mask)
        padded, padded_mask, inside = pad_to_aspect(image, mask, self.fixed_size)
        size = padded.shape[1::-1]
        filled = self._run(resize_image(padded, self.fixed_size), M.resize_mask(padded_mask, self.fixed_size))
        return resize_image(filled, size)[inside]

    def _run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = self._forward(image, mask) * (255.0 / self.output_scale)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def _forward(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The export's raw output (H, W, 3) float, in its own scale."""
        m = mask.astype(np.float32)[None, None]
        rgb = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        if self.two_inputs:
            feeds = {self.input_names[0]: rgb, self.input_names[1]: m}
        else:
            feeds = {self.input_names[0]: np.concatenate([rgb * (1 - m), m], axis=1)}
        return self.session.run(None, feeds)[0][0].transpose(1, 2, 0)


def pad_to_aspect(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """Grow ``image`` (H, W, 3) to the aspect of ``size`` (w, h) by reflecting its borders, evenly
    on both sides, so that resizing it to ``size`` scales both axes alike. The padding is context,
    not hole: the mask grows with False. Returns (padded image, padded mask, slices of the original
    in the padded arrays)."""
    h, w = mask.shape
    target_w, target_h = size
    if w * target_h < h * target_w:  # too narrow: widen
        new_w, new_h = round(h * target_w / target_h), h
    else:  # too flat (or exact): heighten
        new_w, new_h = w, round(w * target_h / target_w)
    top, left = (new_h - h) // 2, (new_w - w) // 2
    pads = ((top, new_h - h - top), (left, new_w - w - left))
    padded = np.pad(image, (*pads, (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
    return padded, np.pad(mask, pads), (slice(top, top + h), slice(left, left + w))


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
