"""Selection: text, boxes, points or a mask file -> one mask, through the mask algebra.

Every label of a request goes to the detector in ONE pass; every box still without a mask (detected
or given) goes to the segmenter in ONE decoder call on an image encoded once. Thresholds the user
did not give are the detector's declared defaults, and the values used are recorded in the
result's ``info`` (for ``detections.json``, the HTTP answers and the recipe).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from promptpaint.core import masks as M
from promptpaint.core.geometry import Window, mask_bbox
from promptpaint.core.images import load_mask
from promptpaint.core.types import Detections, Segmentation
from promptpaint.errors import InvalidOptionError, NothingFoundError, UnsupportedOperationError
from promptpaint.options import SelectOptions
from promptpaint.pipeline.batching import SelectHint

if TYPE_CHECKING:
    from promptpaint.backends.protocols import Detector
    from promptpaint.pipeline.pipeline import Pipeline


def labels_for(find: list[str], opts: SelectOptions) -> list[str]:
    """Every label one detector pass answers: what to find, then what to exclude."""
    return list(dict.fromkeys(find + opts.exclude))


def detect(pipe: Pipeline, rgb: np.ndarray, labels: list[str], opts: SelectOptions,
           detector: Detector | None = None) -> Detections:
    """All labels in one pass, with the thresholds resolved and recorded in ``info``."""
    detector = detector or pipe.detector(opts.detector)
    box_threshold = detector.default_box_threshold if opts.box_threshold is None else opts.box_threshold
    text_threshold = None
    if detector.default_text_threshold is not None:  # a model without a text threshold records none
        text_threshold = detector.default_text_threshold if opts.text_threshold is None else opts.text_threshold
    found = detector.detect(rgb, labels, box_threshold, text_threshold)
    info: dict[str, Any] = {"detector": detector.model_id, "box_threshold": box_threshold}
    if text_threshold is not None:
        info["text_threshold"] = text_threshold
    return replace(found, info=info)


def require_found(found: Detections, labels: list[str]) -> None:
    """Raise :class:`NothingFoundError` naming every label the detections do not answer."""
    missing = [label for label in labels if label not in found.labels]
    if missing:
        raise NothingFoundError(missing)


def select_hint(pipe: Pipeline, rgb: np.ndarray, opts: SelectOptions, mask: Any,
                find: list[str]) -> SelectHint | None:
    """What :func:`select` is about to ask the models, so that a batch can ask for several images at once."""
    if mask is not None or opts.mask:
        return None
    labels = labels_for(find, opts)
    if not (labels or opts.box or opts.point):
        return None
    segmenter = pipe.segmenter(opts.segmenter)
    if segmenter.finds_from_text:  # one model does both (SAM 3): nothing to batch ahead
        return None
    return SelectHint(rgb, segmenter, pipe.detector(opts.detector) if labels else None, tuple(labels))


def select(pipe: Pipeline, rgb: np.ndarray, opts: SelectOptions, mask: Any = None,
           find: list[str] | None = None, dilate: int | None = None) -> Segmentation:
    """The selection of ``opts`` (``find`` and ``dilate`` override the options' own: ``--keep``
    selects what to keep, and an operation resolves its dilation itself). ``mask`` is an array, a
    PIL image or a path given beside the options."""
    h, w = rgb.shape[:2]
    find = opts.find if find is None else find
    info: dict[str, Any] = {"image_size": [w, h]}
    user_mask = mask if mask is not None else opts.mask
    excluded = Detections.empty((w, h))
    if user_mask is not None:
        selected = load_mask(user_mask, (w, h), max_pixels=pipe.limits.max_pixels)
        box = mask_bbox(selected) or Window(0, 0, 0, 0)
        included = Detections([[box.x0, box.y0, box.x1, box.y1]], [1.0], ["mask"], selected[None], (w, h))
    else:
        if not (find or opts.box or opts.point):
            raise InvalidOptionError("nothing to select: give --find, --box, --point or --mask")
        included, excluded = _instances(pipe, rgb, opts, find, info)
        keep = M.select(included.masks, included.scores, pick=opts.pick)
        included = included[keep]
        selected = M.union(list(included.masks), (h, w))
        if len(excluded):
            selected = M.subtract(selected, M.union(list(excluded.masks)))
    if opts.fill_holes:
        selected = M.fill_holes(selected)
    if opts.min_area:
        selected = M.remove_small(selected, opts.min_area)
    if opts.invert:
        selected = M.invert(selected)
    grow = (opts.dilate or 0) if dilate is None else dilate
    if grow:
        selected = M.dilate(selected, grow)
    if not selected.any():
        raise NothingFoundError(find or ["the selection"],
                                "the selection is empty after --exclude/--min-area/--pick; nothing to edit")
    return Segmentation(selected, included, excluded, info)


def _instances(pipe: Pipeline, rgb: np.ndarray, opts: SelectOptions, find: list[str],
               info: dict) -> tuple[Detections, Detections]:
    """Detect (all labels in one pass), then segment every box in one decoder call."""
    h, w = rgb.shape[:2]
    labels = labels_for(find, opts)
    segmenter = pipe.segmenter(opts.segmenter)
    info["segmenter"] = segmenter.model_id
    if opts.box and not segmenter.takes_boxes or opts.point and not segmenter.takes_points:
        raise UnsupportedOperationError(f"{segmenter.model_id} takes text prompts only; for --box or --point "
                                        "choose --segmenter sam-b or sam2-t")
    if labels:
        # A segmenter that finds from text (SAM 3) replaces the detector.
        found = detect(pipe, rgb, labels, opts, segmenter if segmenter.finds_from_text else None)
        info.update(found.info)
    else:
        found = Detections.empty((w, h))
    require_found(found, find)
    user = Detections(np.array(opts.box, np.float32).reshape(-1, 4), np.ones(len(opts.box)),
                      ["box"] * len(opts.box), image_size=(w, h))
    # Every box still without a mask (detected or given) goes through ONE decoder call.
    have_masks = found if found.masks is not None else Detections.empty((w, h))
    need_masks = user if found.masks is not None else Detections.concat([found, user])
    if len(need_masks):
        need_masks = need_masks.with_masks(segmenter.segment(rgb, boxes=need_masks.xyxy)[0])
    parts = [have_masks, need_masks]
    if opts.point:  # all points together describe one object
        masks, scores = segmenter.segment(rgb, points=np.array(opts.point, np.float32))
        box = mask_bbox(masks[0]) or Window(0, 0, 0, 0)
        parts.append(Detections([[box.x0, box.y0, box.x1, box.y1]], scores[:1], ["point"], masks[:1], (w, h)))
    boxes = Detections.concat(parts)
    if not len(boxes):
        boxes = Detections(np.zeros((0, 4)), np.zeros(0), [], np.zeros((0, h, w), bool), (w, h))
    is_excluded = np.array([label in opts.exclude and label not in find for label in boxes.labels], bool)
    return boxes[~is_excluded], boxes[is_excluded]
