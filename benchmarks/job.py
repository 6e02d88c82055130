"""The job both sides do, and what they share: photos, labels, prompts, boxes, the fidelity figure.

One photo, three labels, three edits in a row: repaint the coffee, change the background around the
saucer, remove the spoon. Random full-size models find random boxes; both sides then use the same
boxes (see :func:`choose_boxes`) so that they segment and repaint the same regions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Edit:
    op: str  # "replace" (the object), "background" (everything but the object), "remove"
    label: str
    prompt: str
    fallback_box: tuple[float, float, float, float]  # fractions of width/height, fitted to the coffee photo
    seed: int


JOB = (
    Edit("replace", "coffee", "a cup of hot chocolate topped with whipped cream", (0.335, 0.23, 0.62, 0.49), 1),
    Edit("background", "saucer", "a white marble kitchen counter, morning light", (0.125, 0.17, 0.80, 0.975), 2),
    Edit("remove", "spoon", "", (0.525, 0.16, 0.71, 0.82), 3),
)
LABELS = [edit.label for edit in JOB]
#: What both sides ask a diffusion model for when removing (promptpaint's own default prompt).
REMOVE_PROMPT = "empty background, seamless continuation of the surroundings"
#: scikit-image's sample photos (in its wheel: no download); a batch cycles through them.
PHOTOS = ("coffee", "chelsea", "astronaut", "rocket")
#: The photo a warm-up run edits (other content than the timed job's, so no cache carries over).
WARMUP_PHOTO = "chelsea"
#: A detected box is used when it covers this share of the image; otherwise the fallback box is.
BOX_AREA_RANGE = (0.01, 0.6)


@dataclass
class SideConfig:
    """What the parent hands each side's process (as JSON)."""

    device: str
    models: dict[str, str]  # grounding-dino, sam, inpainter, remover (and fast-lora) -> folder
    photo: str  # the single-photo job's file
    batch: list[str]  # files of the batch job (empty: no batch)
    out_dir: str
    steps: int | None  # None: each side's own default
    box_threshold: float = 0.3
    text_threshold: float = 0.25
    warmup: bool = False  # run the job once on another photo before timing (a warm server)
    compile: bool = False
    offload: bool = False
    sdxl: bool = False
    #: "default", or "fast": promptpaint samples with its fast mode (a distillation LoRA, few steps)
    preset: str = "default"
    #: Boxes promptpaint chose, per photo file, that the naive side reuses (same regions to repaint).
    boxes: dict[str, list[list[float]]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> SideConfig:
        return cls(**json.loads(Path(path).read_text()))


def photo(name: str, size: tuple[int, int]) -> np.ndarray:
    """A scikit-image sample photo resized to ``size`` (w, h), RGB uint8."""
    import cv2
    import skimage.data

    rgb = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    shrink = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)


def choose_boxes(xyxy: np.ndarray, scores: np.ndarray, labels: tuple[str, ...],
                 size: tuple[int, int]) -> tuple[list[list[float]], list[str]]:
    """Per label of :data:`JOB`, the best-scoring detected box covering 1-60% of the image (a box a
    user would accept), else the label's fallback box. Returns (boxes, "detector" | "fallback" per label)."""
    w, h = size
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]) / (w * h) if len(xyxy) else np.zeros(0)
    boxes, sources = [], []
    for edit in JOB:
        ok = [i for i, label in enumerate(labels)
              if label == edit.label and BOX_AREA_RANGE[0] <= area[i] <= BOX_AREA_RANGE[1]]
        if ok:
            best = max(ok, key=lambda i: scores[i])
            boxes.append([round(float(v), 1) for v in xyxy[best]])
            sources.append("detector")
        else:
            fx0, fy0, fx1, fy1 = edit.fallback_box
            boxes.append([round(fx0 * w, 1), round(fy0 * h, 1), round(fx1 * w, 1), round(fy1 * h, 1)])
            sources.append("fallback")
    return boxes, sources


def box_mask(shape: tuple[int, int], box: list[float]) -> np.ndarray:
    """A (H, W) mask that is True inside the box."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


def clip_to_box(mask: np.ndarray, box: list[float]) -> np.ndarray:
    """Keep the mask inside its box. Random SAM weights give masks scattered over the whole image; real
    ones stay near the object. Both sides apply this, so both edit the same, object-like regions."""
    inside = box_mask(mask.shape, box)
    clipped = mask.astype(bool) & inside
    return clipped if clipped.any() else inside  # an empty random mask: take the box itself


def changed_outside(before: np.ndarray, after: np.ndarray, edit_area: np.ndarray) -> dict[str, float]:
    """The share of the pixels outside the edit area whose value changed, and the edit area's share."""
    changed = np.any(before != after, axis=-1)
    outside = ~edit_area
    share = float(changed[outside].sum() / outside.sum()) if outside.any() else 0.0
    return {"changed_outside_share": round(share, 6), "edited_share": round(float(edit_area.mean()), 4)}
