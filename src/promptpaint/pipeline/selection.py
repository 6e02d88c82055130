"""Selection: text, boxes, points or a mask file -> one mask, through the mask algebra.

Every label of a request goes to the detector in ONE pass; every box still without a mask (detected
or given) goes to the segmenter in ONE decoder call on an image encoded once, with the points in
the prompts of the boxes that contain them (SAM's box+points usage). Thresholds the user
did not give are the detector's declared defaults, and the values used are recorded in the
result's ``info`` (for ``detections.json``, the HTTP answers and the recipe).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from promptpaint.core import masks as M
from promptpaint.core.geometry import Window, mask_bbox
from promptpaint.core.images import load_mask
from promptpaint.core.phrases import Phrase, Pick, read_phrases, read_pick
from promptpaint.core.picking import pick_instances, pick_phrases
from promptpaint.core.types import Detections, Segmentation
from promptpaint.errors import InvalidOptionError, NothingFoundError, UnsupportedOperationError
from promptpaint.options import ModelOptions, SelectOptions
from promptpaint.pipeline.batching import SelectHint

if TYPE_CHECKING:
    from promptpaint.backends.protocols import Detector
    from promptpaint.pipeline.pipeline import Pipeline


def read(find: list[str], opts: SelectOptions) -> tuple[list[Phrase], list[Phrase]]:
    """The phrases of what to find and of what to exclude, as the grammar reads them."""
    return read_phrases(find), read_phrases(opts.exclude)


def labels_for(find: list[str], opts: SelectOptions, attach: Sequence[str] = ()) -> list[str]:
    """Every label one detector pass answers: the nouns of what to find and of what to exclude,
    then the regions that go with the selection (``attach``: shadow, reflection)."""
    phrases, excluded = read(find, opts)
    return list(dict.fromkeys([p.label for p in phrases + excluded] + list(attach)))


def models_needed(opts: SelectOptions, labels: Sequence[str], models: ModelOptions) -> dict[str, str]:
    """role -> model name of what a selection loads: the segmenter for any label, box or point, the
    detector for labels (what to find or exclude, and what goes with the selection: shadows). The
    one rule for preflight and ``promptpaint models check``; a mask alone loads nothing."""
    needed: dict[str, str] = {}
    if labels or opts.box or opts.point:
        needed["segmenter"] = opts.segmenter or models.segmenter
    if labels:
        needed["detector"] = opts.detector or models.detector
    return needed


def attach_margin(size: tuple[int, int]) -> int:
    """How far (pixels) a shadow or reflection may lie from the object's mask and still go with
    it: masks of touching things often leave a seam of a few pixels (0.5% of the longer side)."""
    return max(2, round(0.005 * max(size)))


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
    cap = pipe.limits.max_instances
    if len(found) > cap:  # every kept box becomes a full-resolution mask: bound the memory
        info["capped"] = [f"the detector found {len(found)} instances at --box-threshold {box_threshold:g}; only "
                          f"the {cap} best-scoring are kept (raise --box-threshold to find fewer)"]
        found = found[np.sort(np.argsort(-found.scores, kind="stable")[:cap])]
    return replace(found, info=info)


def detect_phrases(pipe: Pipeline, rgb: np.ndarray, opts: SelectOptions) -> Detections:
    """What ``detect`` answers: the nouns of ``opts.find`` in one pass, then each phrase's pick
    (or ``--pick``) among its label's instances. ``info`` records how each phrase was read and
    which found nothing (see :func:`require_found`)."""
    phrases = read_phrases(opts.find)
    found = detect(pipe, rgb, list(dict.fromkeys(p.label for p in phrases)), opts)
    kept, missing = pick_phrases(found, phrases, read_pick(opts.pick))
    return replace(found[kept], info={**found.info, "read": [p.to_json() for p in phrases], "missing": missing})


@dataclass(frozen=True)
class Prompts:
    """The user's boxes and points, checked against the image (see :func:`check_prompts`)."""

    boxes: np.ndarray  # (N, 4) inside the image
    points: np.ndarray  # (P, 3) x, y, label
    notes: tuple[str, ...] = ()  # what was clamped, for the output JSON and the CLI's warnings


def _numbers(values) -> str:
    return ",".join(f"{v:g}" for v in values)


def check_prompts(opts: SelectOptions, labels: list[str], size: tuple[int, int]) -> Prompts:
    """The user's ``--box`` and ``--point`` against the image ``size`` (w, h), cheap enough to run
    before any model loads: a box or point entirely outside the image is refused; a box partly
    outside is clamped to it (and noted). Points with no positive point, no box and no label to
    find describe nothing and are refused."""
    w, h = size
    boxes, notes = [], []
    for box in opts.box:
        x0, y0, x1, y1 = box
        if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
            raise InvalidOptionError(f"--box {_numbers(box)} lies entirely outside the {w}x{h} image")
        clamped = (max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h)))
        if clamped != tuple(box):
            notes.append(f"--box {_numbers(box)} reaches outside the {w}x{h} image: clamped to {_numbers(clamped)}")
        boxes.append(clamped)
    for x, y, _ in opts.point:
        if not (0 <= x < w and 0 <= y < h):
            raise InvalidOptionError(f"--point {_numbers((x, y))} lies outside the {w}x{h} image")
    if opts.point and not boxes and not labels and not any(label == 1 for *_, label in opts.point):
        raise InvalidOptionError("--point: no positive point (x,y,1) and no --box or --find: nothing to select")
    return Prompts(np.array(boxes, np.float32).reshape(-1, 4), np.array(opts.point, np.float32).reshape(-1, 3),
                   tuple(notes))


def require_found(missing: list[str], found_any: bool, require: str = "any") -> None:
    """Raise :class:`NothingFoundError` when nothing at all was found, or when ``require`` is
    ``"all"`` and some phrase found nothing. Otherwise the caller goes on with what was found."""
    if missing and (require == "all" or not found_any):
        raise NothingFoundError(missing)


def notes(info: dict) -> list[str]:
    """The selection's one-line warnings for the user: boxes clamped to the image, detections
    capped, shadows or reflections left out for their size."""
    return [*info.get("clamped", []), *info.get("capped", []), *info.get("left_out", [])]


def missing_warning(missing: list[str]) -> str:
    """The one line a front end prints when an edit went on without some phrases."""
    names = ", ".join(repr(text) for text in missing)
    return f"warning: nothing found for {names}; went on with the rest (--require all stops instead)"


def select_hint(pipe: Pipeline, rgb: np.ndarray, opts: SelectOptions, mask: Any,
                find: list[str], attach: Sequence[str] = ()) -> SelectHint | None:
    """What :func:`select` is about to ask the models, so that a batch can ask for several images at once."""
    if mask is not None or opts.mask:
        return None
    labels = labels_for(find, opts, attach)
    if not (labels or opts.box or opts.point):
        return None
    segmenter = pipe.segmenter(opts.segmenter)
    if segmenter.finds_from_text:  # one model does both (SAM 3): nothing to batch ahead
        return None
    return SelectHint(rgb, segmenter, pipe.detector(opts.detector) if labels else None, tuple(labels))


def select(pipe: Pipeline, rgb: np.ndarray, opts: SelectOptions, mask: Any = None,
           find: list[str] | None = None, dilate: int | None = None, attach: Sequence[str] = ()) -> Segmentation:
    """The selection of ``opts`` (``find`` and ``dilate`` override the options' own: ``--keep``
    selects what to keep, and an operation resolves its dilation itself). ``mask`` is an array, a
    PIL image or a path given beside the options. ``attach``: labels of regions that go with the
    selected objects when they touch them (``remove --with-shadow``: ``["shadow"]``)."""
    h, w = rgb.shape[:2]
    find = opts.find if find is None else find
    info: dict[str, Any] = {"image_size": [w, h]}
    user_mask = mask if mask is not None else opts.mask
    excluded = Detections.empty((w, h))
    what = find or ["the selection"]

    def emptied(cause: str) -> NothingFoundError:
        return NothingFoundError(what, f"the selection is empty after {cause}; nothing to edit")

    if user_mask is not None:
        selected = load_mask(user_mask, (w, h), max_pixels=pipe.limits.max_pixels)
        if not selected.any():
            raise NothingFoundError(what, f"the mask {_mask_name(user_mask)} selects nothing (no pixel above 127)")
        box = mask_bbox(selected) or Window(0, 0, 0, 0)
        included = Detections([[box.x0, box.y0, box.x1, box.y1]], [1.0], ["mask"], selected[None], (w, h))
    else:
        if not (find or opts.box or opts.point):
            raise InvalidOptionError("nothing to select: give --find, --box, --point or --mask")
        included, excluded, attached = _instances(pipe, rgb, opts, find, attach, info)
        selected = M.union(list(included.masks), (h, w))
        if len(attached):
            selected |= M.union(list(attached.masks))
            included = Detections.concat([included, attached])
        if not selected.any():
            raise NothingFoundError(what, "the segmenter's masks of what was found are empty; nothing to edit")
        if len(excluded):
            selected = M.subtract(selected, M.union(list(excluded.masks)))
            if not selected.any():
                raise emptied(f"--exclude {'. '.join(opts.exclude)}")
    if opts.fill_holes:
        selected = M.fill_holes(selected)
    if opts.min_area:
        selected = M.remove_small(selected, opts.min_area)
        if not selected.any():
            raise emptied(f"--min-area {opts.min_area} (every region is smaller)")
    if opts.invert:
        selected = M.invert(selected)
        if not selected.any():
            raise emptied("--invert (the selection covered the whole image)")
    grow = (opts.dilate or 0) if dilate is None else dilate
    if grow:
        selected = M.dilate(selected, grow)
        if not selected.any():
            raise emptied(f"--dilate {grow} (eroded away)")
    return Segmentation(selected, included, excluded, info)


def _mask_name(mask: Any) -> str:
    """How an error names a mask: its file, or where it came from."""
    if isinstance(mask, dict):
        return "embedded in the recipe"
    return f"file {str(mask)!r}" if isinstance(mask, (str, Path)) else "given"


def _instances(pipe: Pipeline, rgb: np.ndarray, opts: SelectOptions, find: list[str], attach: Sequence[str],
               info: dict) -> tuple[Detections, Detections, Detections]:
    """Detect every label in one pass, pick each phrase's instances by their boxes, segment every
    box still needed in one decoder call; then add the ``attach`` regions that touch the selection.
    Returns the included, the excluded and the attached instances, with masks."""
    h, w = rgb.shape[:2]
    phrases, exclude_phrases = read(find, opts)
    labels = labels_for(find, opts, attach)
    prompts = check_prompts(opts, labels, (w, h))
    if prompts.notes:
        info["clamped"] = list(prompts.notes)
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
    default = read_pick(opts.pick)
    kept, missing = pick_phrases(found, phrases, default)
    if phrases:
        info["read"] = [p.to_json() for p in phrases]
        info["missing"] = missing
    require_found(missing, bool(len(kept) or opts.box or opts.point), opts.require)
    # An exclude phrase naming a label that is also found, with no words of its own, would take
    # back everything found: as before the grammar, it excludes nothing then.
    find_labels = {p.label for p in phrases}
    exclude_phrases = [p for p in exclude_phrases if p.label not in find_labels or p.pick != Pick()]
    dropped, _ = pick_phrases(found, exclude_phrases)
    candidates = np.flatnonzero(np.isin(np.array(found.labels, dtype=object), list(attach)))
    kept = np.setdiff1d(kept, dropped)
    needed = np.union1d(np.union1d(kept, dropped), candidates).astype(np.int64)
    found = found[needed]  # what is neither picked, excluded nor attachable needs no mask
    kept, dropped, candidates = (np.searchsorted(needed, part) for part in (kept, dropped, candidates))
    user = Detections(prompts.boxes, np.ones(len(prompts.boxes)), ["box"] * len(prompts.boxes), image_size=(w, h))
    user = user[pick_instances(user, default, what="box")]
    free = Detections.empty((w, h))  # the object of the points that lie in no box
    if not len(prompts.points):
        # Every box still without a mask (detected or given) goes through ONE decoder call.
        if found.masks is None and len(found) + len(user):
            both = Detections.concat([found, user])
            both = both.with_masks(segmenter.segment(rgb, boxes=both.xyxy)[0])
            found, user = both[:len(found)], both[len(found):]
        elif len(user):
            user = user.with_masks(segmenter.segment(rgb, boxes=user.xyxy)[0])
    elif found.masks is None:
        # The points go in the prompts of what is selected (kept instances and given boxes): a
        # point joins every box containing it. What --exclude takes back and attachable regions
        # are cut out without them, in a second call.
        chosen, free = _segment_with_points(segmenter, rgb, Detections.concat([found[kept], user]), prompts.points)
        rest = np.setdiff1d(np.arange(len(found)), kept)
        masks = np.zeros((len(found), h, w), bool)
        masks[kept] = chosen.masks[:len(kept)]
        if len(rest):
            masks[rest] = segmenter.segment(rgb, boxes=found[rest].xyxy)[0]
        found, user = found.with_masks(masks), chosen[len(kept):]
    else:  # SAM 3 found masks from text: the points go with the given boxes
        user, free = _segment_with_points(segmenter, rgb, user, prompts.points)
    included = _with_masks(Detections.concat([found[kept], user, free]), (w, h))
    excluded = _with_masks(found[dropped], (w, h))
    attached = _attach(included, _with_masks(found[candidates], (w, h)), attach, info)
    return included, excluded, attached


def _segment_with_points(segmenter: Any, rgb: np.ndarray, boxes: Detections,
                         points: np.ndarray) -> tuple[Detections, Detections]:
    """``boxes`` with their masks and the points in their prompts, in ONE decoder call; and the
    object of the points inside no box (empty when there is none)."""
    h, w = rgb.shape[:2]
    masks, scores = segmenter.segment(rgb, boxes=boxes.xyxy, points=points)
    boxed = boxes.with_masks(masks[:len(boxes)])
    if len(masks) == len(boxes):
        return boxed, Detections.empty((w, h))
    box = mask_bbox(masks[-1]) or Window(0, 0, 0, 0)
    return boxed, Detections([[box.x0, box.y0, box.x1, box.y1]], scores[-1:], ["point"], masks[-1:], (w, h))


def _attach(included: Detections, candidates: Detections, attach: Sequence[str], info: dict) -> Detections:
    """The candidates (shadows, reflections) whose mask touches the included instances' mask grown
    by :func:`attach_margin` and is not :func:`too_large_to_attach`; ``info["attached"]`` says, per
    label, how many were found, which were added (their indices among the selection's instances,
    after the included ones) and the boxes of those left out for their size."""
    if not attach:
        return candidates
    w, h = candidates.image_size
    objects = M.union(list(included.masks), (h, w))
    margin = attach_margin((w, h))
    touching = M.touching(objects, candidates.masks, margin) if len(candidates) else np.zeros(0, int)
    big = [i for i in touching if too_large_to_attach(candidates.masks[i], included.masks, margin)]
    attached = candidates[np.array([i for i in touching if i not in big], dtype=int)]
    info["attached"] = {}
    for label in attach:
        entry = {"found": candidates.labels.count(label),
                 "added": [len(included) + i for i, name in enumerate(attached.labels) if name == label]}
        left_out = [candidates.xyxy[i].round(1).tolist() for i in big if candidates.labels[i] == label]
        if left_out:
            entry["too_large"] = left_out
            info.setdefault("left_out", []).append(
                f"left out {len(left_out)} {label} region(s) touching the selection, each over "
                f"{ATTACH_MAX_RATIO:g}x the object's area or half the image (the ground or the water?): "
                + ", ".join(_numbers(box) for box in left_out))
        info["attached"][label] = entry
    return attached


#: A shadow or reflection may add at most this many times the area of the objects it touches
#: (a long evening shadow is about 3x); a detector's "shadow" that is the whole floor adds far more.
ATTACH_MAX_RATIO = 4.0
#: ... and never more than this share of the image.
ATTACH_MAX_SHARE = 0.5


def too_large_to_attach(candidate: np.ndarray, objects: np.ndarray, margin: int) -> bool:
    """Whether a touching shadow or reflection would add more than :data:`ATTACH_MAX_RATIO` times
    the area of the objects (N, H, W) it touches, or more than :data:`ATTACH_MAX_SHARE` of the
    image: a region that large is the ground or the water, not the object's shadow."""
    touched = M.union(list(objects[M.touching(candidate, objects, margin)]), candidate.shape)
    extra = int((candidate & ~touched).sum())
    return extra > ATTACH_MAX_RATIO * int(touched.sum()) or extra > ATTACH_MAX_SHARE * candidate.size


def _with_masks(dets: Detections, size: tuple[int, int]) -> Detections:
    """``dets`` with an (N, H, W) mask array even when empty (the mask algebra needs the shape)."""
    if dets.masks is not None:
        return dets
    w, h = size
    return Detections(dets.xyxy, dets.scores, dets.labels, np.zeros((len(dets), h, w), bool), size, dets.info)
