"""Oracle inpainters: small fakes that act out the failure modes of real diffusion inpainters, so the
quality harness (``benchmarks/quality.py``) can measure seams and coherence without weights.

They satisfy the pipeline's inpainter protocol (the same attributes and ``inpaint`` signature as
``DiffusersInpainter``), with a 512 px working size like SD 1.5. They live here, in the benchmark,
and never in production code.

- :class:`SeamOracle` paints new, photo-like texture inside the mask (the crop's own picture from a
  few dozen pixels away), continuous with the context at the mask's edge (a diffusion model regenerates the whole crop, so its own picture has no
  seam), and adds a smooth colour and brightness drift over the whole crop, as VAEs do: a gain
  and an offset per channel, a gradient across the crop and a gentle low-frequency bump, drawn
  from the seed. Pasting its hole into untouched pixels shows that drift as a seam.
- :class:`CoherenceOracle` paints a sky with one bright disc (a "sun") at a place that depends on
  the seed and the prompt, at strength >= 0.5; below that it only adds faint texture to what it
  is given (img2img at low strength keeps the picture). Tiles generated independently each get
  their own sun.
- :class:`SubjectFinder` is a segmenter that finds "the subject" from text (as SAM 3 does) by
  knowing its mask, so that "keep the subject, new background" runs the real ``--keep`` path.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np

from promptpaint.core.geometry import mask_bbox
from promptpaint.core.types import Detections

SUN = (255, 210, 40)
SKY = (90, 140, 210)


class _Oracle:
    family = "oracle"
    working_size = 512
    multiple = 8
    upscale = True
    min_context = 0
    scheduler, lora, has_fast_mode, shows_previews = None, None, False, False  # no sampler, no fast mode
    needs_prompt = True
    takes_negative_prompt = True
    batches = False
    default_steps = 25
    default_guidance = 7.5
    default_strength = 1.0

    def __init__(self):
        self.calls: list[dict] = []  # role-free record: size, strength, images per call

    def inpaint(self, images, mask, *, prompt, negative_prompt="", seeds, steps=None, guidance=None, strength=1.0,
                progress=None):
        masks = mask if isinstance(mask, list) else [mask] * len(images)
        prompts = prompt if isinstance(prompt, list) else [prompt] * len(images)
        strength = 1.0 if strength is None else strength
        self.calls.append({"size": (images[0].shape[1], images[0].shape[0]), "strength": strength,
                           "images": len(images)})
        return [self._paint(im, m.astype(bool), p, int(s), strength) for im, m, p, s in zip(images, masks, prompts, seeds)]

    def _paint(self, image: np.ndarray, mask: np.ndarray, prompt: str, seed: int, strength: float) -> np.ndarray:
        raise NotImplementedError


def _rng(seed: int, prompt: str, size: tuple[int, ...]) -> np.random.Generator:
    """A generator that depends on the seed, the prompt and the crop's size (a call's identity)."""
    return np.random.default_rng([seed, zlib.crc32(prompt.encode()), *size])


def _inside_ramp(mask: np.ndarray, width: float) -> np.ndarray:
    """0 at the mask's edge rising to 1 at ``width`` pixels inside it (0 outside)."""
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.clip(inside / width, 0, 1).astype(np.float32)


class SeamOracle(_Oracle):
    """New texture inside the mask plus a smooth colour/brightness drift over the whole crop."""

    model_id = "oracle:seam"
    detail_width = 8.0  # px inside the mask over which new detail comes in
    colour_width = 32.0  # px over which the new content's own colours take over

    def __init__(self, drift: float = 1.0):
        super().__init__()
        self.drift = drift  # scales every drift term (0: a model without drift)

    def _texture(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """New content as a model paints it: the crop's own picture from a few dozen pixels away
        (photo-like, with the local look of the place), its detail coming in over 8 px inside the
        mask and its colours over 32 px, so that at the mask's edge it continues the context (the
        model's own picture has no seam)."""
        h, w = mask.shape
        dx, dy = rng.integers(24, 48, 2) * rng.choice([-1, 1], 2)
        shift = np.float32([[1, 0, dx], [0, 1, dy]])
        other = cv2.warpAffine(image, shift, (w, h), borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
        own = image.astype(np.float32)
        low = lambda im: cv2.GaussianBlur(im, (0, 0), 4)  # noqa: E731
        detail = _inside_ramp(mask, self.detail_width)[..., None]
        colour = _inside_ramp(mask, self.colour_width)[..., None]
        base = low(own) * (1 - colour) + low(other) * colour
        return base + (own - low(own)) * (1 - detail) + (other - low(other)) * detail

    def _paint(self, image, mask, prompt, seed, strength):
        rng = _rng(seed, prompt, image.shape)
        field, gain = self._drift(mask.shape, rng)
        out = self._texture(image, mask, rng) if strength >= 0.5 and mask.any() else image.astype(np.float32)
        return np.clip(np.rint(out * gain + field), 0, 255).astype(np.uint8)

    def _drift(self, shape: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """An additive field (H, W, 3) and a gain (3,): a brightness gain of up to 6% plus 2% per
        channel, offsets of up to 12 levels, gradients of up to 8 levels from the centre to each
        side, and a 5-level bump of about one period over the crop; all scaled by ``drift``."""
        h, w = shape
        u = (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
        v = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1
        u, v = np.meshgrid(u, v)
        s = self.drift
        gain = 1 + s * (rng.uniform(-0.06, 0.06) + rng.uniform(-0.02, 0.02, 3))
        offset = s * rng.uniform(-12, 12, 3)
        slopes = s * rng.uniform(-8, 8, (2, 3))
        bump = s * 5 * np.sin(np.pi * (0.7 * u + rng.uniform())) * np.cos(np.pi * (0.6 * v + rng.uniform()))
        return offset + slopes[0] * u[..., None] + slopes[1] * v[..., None] + bump[..., None], gain


class CoherenceOracle(_Oracle):
    """A sky with one sun whose place depends on seed and prompt (strength >= 0.5), or faint texture."""

    model_id = "oracle:coherence"

    def _paint(self, image, mask, prompt, seed, strength):
        rng = _rng(seed, prompt, image.shape)
        h, w = mask.shape
        if strength < 0.5 or not mask.any():  # refine: keep the picture, add a little detail
            faint = rng.integers(-3, 4, image.shape)
            return np.clip(image.astype(int) + faint * mask[..., None], 0, 255).astype(np.uint8)
        out = image.copy()
        sky = np.array(SKY, np.float32) + np.linspace(-20, 20, h, dtype=np.float32)[:, None, None]
        out[mask] = np.broadcast_to(sky, (h, w, 3))[mask].astype(np.uint8)
        radius = max(2, int(0.08 * min(h, w)))
        room = cv2.erode(mask.astype(np.uint8), np.ones((2 * radius + 1,) * 2, np.uint8)).astype(bool)
        ys, xs = np.nonzero(room if room.any() else mask)
        pick = int(rng.integers(len(ys)))
        sun = np.zeros((h, w), np.uint8)
        cv2.circle(sun, (int(xs[pick]), int(ys[pick])), radius, 1, -1)
        out[sun.astype(bool) & mask] = SUN
        return out


def count_suns(image: np.ndarray, min_area: int = 50, tolerance: int = 40) -> int:
    """Connected regions (8-connected) of the sun's colour, of at least ``min_area`` pixels."""
    near = (np.abs(image.astype(int) - SUN) <= tolerance).all(axis=-1)
    count, _, stats, _ = cv2.connectedComponentsWithStats(near.astype(np.uint8), connectivity=8)
    return int((stats[1:, cv2.CC_STAT_AREA] >= min_area).sum())


class SubjectFinder:
    """A segmenter (and detector, like SAM 3) that finds its label as the mask it was given."""

    model_id = "oracle:subject"
    takes_boxes = False
    takes_points = False
    finds_from_text = True
    returns_masks = True
    batches = False
    default_box_threshold = 0.5
    default_text_threshold = None

    def __init__(self, mask: np.ndarray, label: str = "subject"):
        self.mask, self.label = mask.astype(bool), label

    def detect(self, image, labels, box_threshold, text_threshold=None) -> Detections:
        h, w = image.shape[:2]
        if self.label not in labels:
            return Detections(np.zeros((0, 4)), np.zeros(0), [], np.zeros((0, h, w), bool), (w, h))
        box = mask_bbox(self.mask)
        return Detections([[box.x0, box.y0, box.x1, box.y1]], [1.0], [self.label], self.mask[None], (w, h))

    def segment(self, image, boxes=None, points=None):
        raise NotImplementedError("the subject is found from text only")
