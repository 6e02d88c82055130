"""Small typed records that flow between the layers. Pure numpy: no torch here.

Conventions used everywhere in promptpaint:
- images are RGB ``uint8`` arrays of shape (H, W, 3);
- masks are ``bool`` arrays of shape (H, W) at the image's full resolution;
- boxes are ``float`` pixel coordinates ``(x0, y0, x1, y1)`` in the original image.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np


class Progress(Protocol):
    """The one progress callback of promptpaint: called ``(step, total)`` after each step of a model
    pass (a denoising step; a LaMa window), ``step`` counting from 1 in every pass.

    A caller that asks for live previews (``previews=N`` on ``Pipeline.edit``, ``apply`` and ``run``)
    must accept a ``preview=`` keyword too: every N steps of a diffusion pass, and at its last, the
    call also carries the window being generated as it looks so far (RGB ``uint8``, the window's
    size, as the model sees it). A caller that did not ask never receives one."""

    def __call__(self, step: int, total: int, /) -> None: ...


@dataclass(frozen=True)
class Detections:
    """N detected (or user-given) instances of one image.

    ``xyxy`` (N, 4) float32 boxes in pixels, ``scores`` (N,) float32, ``labels`` the text each
    instance answers to, ``masks`` (N, H, W) bool or None before segmentation.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...]
    masks: np.ndarray | None = None
    image_size: tuple[int, int] | None = None  # (width, height)
    #: how they were found, for the record: detector id, the thresholds used (as supervision's metadata)
    info: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", tuple(self.labels))
        n = len(xyxy)
        if len(scores) != n or len(self.labels) != n:
            raise ValueError(f"Detections: {n} boxes, {len(scores)} scores, {len(self.labels)} labels")
        if self.masks is not None:
            masks = np.asarray(self.masks, dtype=bool)
            if masks.ndim != 3 or len(masks) != n:
                raise ValueError(f"Detections: masks must be (N, H, W) with N={n}, got {masks.shape}")
            object.__setattr__(self, "masks", masks)
            if self.image_size is None:
                object.__setattr__(self, "image_size", (masks.shape[2], masks.shape[1]))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        """Boolean, integer-array or slice indexing returns a new record."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.arange(len(self))[index]
        return Detections(
            xyxy=self.xyxy[idx],
            scores=self.scores[idx],
            labels=tuple(self.labels[i] for i in idx),
            masks=None if self.masks is None else self.masks[idx],
            image_size=self.image_size,
            info=self.info,
        )

    @classmethod
    def empty(cls, image_size: tuple[int, int] | None = None) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), (), None, image_size)

    @classmethod
    def concat(cls, parts: list[Detections]) -> Detections:
        size = next((p.image_size for p in parts if p.image_size is not None), None)
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(size)
        with_masks = all(p.masks is not None for p in parts)
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            labels=tuple(label for p in parts for label in p.labels),
            masks=np.concatenate([p.masks for p in parts]) if with_masks else None,
            image_size=parts[0].image_size,
            info=parts[0].info,
        )

    def with_masks(self, masks: np.ndarray) -> Detections:
        return replace(self, masks=masks)

    @property
    def areas(self) -> np.ndarray:
        """Mask areas in pixels when masks are present, else box areas."""
        if self.masks is not None:
            return self.masks.reshape(len(self), -1).sum(axis=1).astype(np.int64)
        w = np.clip(self.xyxy[:, 2] - self.xyxy[:, 0], 0, None)
        h = np.clip(self.xyxy[:, 3] - self.xyxy[:, 1], 0, None)
        return (w * h).astype(np.int64)


@dataclass(frozen=True)
class Segmentation:
    """What `Pipeline.segment` returns: the final mask and the instances it was built from."""

    mask: np.ndarray  # (H, W) bool, the final selection after mask algebra
    detections: Detections  # included instances (with masks)
    excluded: Detections  # instances subtracted by --exclude
    info: dict[str, Any] = field(default_factory=dict)  # model ids, thresholds, image size


@dataclass(frozen=True)
class EditResult:
    """What an edit returns.

    ``image`` is the first (or only) variant; ``variants`` holds all of them. ``mask`` is the
    effective edit mask (after dilation and feathering, as bool: True where pixels may differ);
    ``alpha`` the input's alpha channel carried through (None when the input had none), and
    ``icc_profile`` the input's colour profile (None for plain sRGB): the output writer writes both.
    """

    image: np.ndarray
    mask: np.ndarray
    variants: tuple[np.ndarray, ...]
    recipe: dict[str, Any]
    alpha: np.ndarray | None = None
    segmentation: Segmentation | None = None
    windows: tuple[Any, ...] = ()  # the crop windows sent to the model (for inspection/tests)
    info: dict[str, Any] = field(default_factory=dict)  # e.g. outpaint canvas size and offset
    icc_profile: bytes | None = None
