"""What each kind of model can do, as typed attributes a reader (and a type checker) can see.

The pipeline and the operations decide by these attributes, never by ``hasattr`` or by family
names: a new backend says what it can do by setting them. One class may play several roles
(SAM 3 is a :class:`Segmenter` that finds from text and a :class:`Detector`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from promptpaint.core.types import Detections, Progress


class Detector(Protocol):
    """Finds what text names: boxes (and, where ``returns_masks``, masks) for every label at once."""

    model_id: str
    #: ``detect`` also returns instance masks (SAM 3), so no segmenter is needed after it
    returns_masks: bool
    #: ``detect_many`` runs several images in batched forward passes (into a cache ``detect`` reads)
    batches: bool
    #: used when the user gives no --box-threshold
    default_box_threshold: float
    #: used when the user gives no --text-threshold; None when the model has no text threshold
    default_text_threshold: float | None

    def detect(self, image: np.ndarray, labels: list[str], box_threshold: float | None = None,
               text_threshold: float | None = None) -> Detections:
        """Every instance of every label, in the image's pixel coordinates (a threshold that is
        None: the declared default)."""
        ...

    def detect_many(self, images: list[np.ndarray], labels: list[str]) -> None:
        """Only where ``batches``: prepare :meth:`detect` for these images in batched passes."""
        ...


class Segmenter(Protocol):
    """Cuts out what boxes or points designate, at full resolution."""

    model_id: str
    takes_boxes: bool
    takes_points: bool
    #: the segmenter also finds from text (SAM 3): it then replaces the detector (see ``Detector``)
    finds_from_text: bool
    #: ``encode_many`` encodes several images in one batched pass (into a cache ``segment`` reads)
    batches: bool

    def segment(self, image: np.ndarray, boxes: np.ndarray | None = None,
                points: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Boxes (N, 4) and points (P, 3) x,y,label (1 include, 0 exclude) -> one mask per object:
        a point joins the prompt of every box containing it, the points in no box are one more
        object when one of them is positive (see ``segmenters.group_prompts``). Returns
        (masks (M, H, W) bool, scores (M,)), boxes first in their order."""
        ...

    def encode_many(self, images: list[np.ndarray]) -> None:
        """Only where ``batches``: encode these images ahead, in batched passes."""
        ...


class Inpainter(Protocol):
    """Repaints the masked area of crops the pipeline cut and resized for it. Diffusion inpainters
    and prompt-free removers (LaMa, Telea) both play this role."""

    model_id: str
    family: str
    #: the resolution the model was trained at (pixels per side)
    working_size: int
    #: generated sizes must be multiples of this
    multiple: int
    #: small windows should be enlarged to the working size (diffusion); removers work at the crop's size
    upscale: bool
    #: the least window side (pixels) the crop-and-stitch gives it around a hole (LaMa: 256)
    min_context: int
    #: it paints what a prompt says (diffusion); False: it fills from the surroundings only (removers)
    needs_prompt: bool
    takes_negative_prompt: bool
    #: one ``inpaint`` call takes a mask and a prompt per image
    batches: bool
    #: used when the user gives none; None: the model has no such setting (it is then not recorded)
    default_steps: int | None
    default_guidance: float | None
    default_strength: float | None
    #: the sampler (a diffusers scheduler's name), for the recipe; None: the model has none
    scheduler: str | None
    #: fast mode's distillation LoRA (hub id or path) when this is the fast model; None otherwise
    lora: str | None
    #: :meth:`fast` gives this model in fast mode (few-step sampling through a distillation LoRA)
    has_fast_mode: bool
    #: ``inpaint(previews=N)`` shows pictures of the work in progress
    shows_previews: bool
    #: ``inpaint(feature_cache=N)`` runs the whole denoiser every N-th step only, reusing its deep
    #: features in between (DeepCache; UNet models)
    caches_features: bool

    def inpaint(self, images: list[np.ndarray], mask: np.ndarray | list[np.ndarray], *,
                prompt: str | list[str], negative_prompt: str | list[str], seeds: list[int],
                steps: int | None, guidance: float | None, strength: float | None,
                progress: Progress | None = None, previews: int = 0, feature_cache: int = 0) -> list[np.ndarray]:
        """Repaint the True area of ``mask`` in each image (all of one size); one output per image.
        With ``previews`` > 0 (where ``shows_previews``), every that many steps and at the last
        ``progress`` also gets ``preview=``: the crop as generated so far (RGB uint8, its size).
        With ``feature_cache`` > 0 (where ``caches_features``), see ``caches_features``."""
        ...

    def fast(self, lora: str | None = None) -> Inpainter:
        """Only where ``has_fast_mode``: the same loaded model in fast mode (``lora``: another
        distillation LoRA than its default)."""
        ...

    def use_preview_decoder(self, name: str | None) -> None:
        """Only where ``shows_previews``: draw previews with ``name`` (a tiny autoencoder or
        ``"linear"``; None: the default choice). Loads it now."""
        ...


class Matter(Protocol):
    """Predicts alpha (how much of each pixel is the subject) in the unknown band of a trimap, at
    the photo's own resolution (large photos in overlapping windows)."""

    model_id: str
    family: str
    #: the largest side of one window, in photo pixels
    window: int
    #: how many pixels neighbouring windows share (their predictions are blended there)
    overlap: int
    #: pixels around the unknown band the model sees as context
    context: int
    #: windows are padded to multiples of this
    multiple: int

    def matte(self, image: np.ndarray, trimap: np.ndarray, *, progress: Progress | None = None) -> np.ndarray:
        """float32 (H, W) alpha in 0..1, meaningful on the trimap's unknown band (128)."""
        ...
