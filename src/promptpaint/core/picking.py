"""Picking among one label's instances by geometry: "the left dog", "the two largest cats".

Each order ranks the instances by one number, smallest first:

- ``left`` / ``right``: the box centre's x (ascending / descending); ``top`` / ``bottom``: its y;
- ``largest`` / ``smallest``: the box's area (the same before and after segmentation, so
  ``detect`` and ``segment`` pick the same instance);
- ``center``: the distance from the box centre to the image centre;
- ``middle``: the distance from the box centre to the median of the instances' centres, along
  the axis where they spread the most (a row: x; a column: y) -- the middle one of a row;
- ``score``: the detector's score, best first.

Ties go to the higher score, then to the earlier instance. Asking for more than was found (the
second from the right among one dog) raises :class:`NothingFoundError` in one line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from promptpaint.core.phrases import Phrase, Pick, plural
from promptpaint.core.types import Detections
from promptpaint.errors import InvalidOptionError, NothingFoundError


def rank_key(dets: Detections, order: str) -> np.ndarray:
    """The number each instance is ranked by in ``order`` (smaller = earlier), float64 (N,)."""
    boxes = dets.xyxy.astype(np.float64)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    if order == "left":
        return cx
    if order == "right":
        return -cx
    if order == "top":
        return cy
    if order == "bottom":
        return -cy
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    if order == "largest":
        return -area
    if order == "smallest":
        return area
    if order == "score":
        return -dets.scores.astype(np.float64)
    if order == "center":
        if dets.image_size is None:
            raise ValueError("picking 'center' needs the detections' image_size")
        w, h = dets.image_size
        return np.hypot(cx - w / 2, cy - h / 2)
    if order == "middle":
        along = cx if np.ptp(cx) >= np.ptp(cy) else cy
        return np.abs(along - np.median(along))
    raise ValueError(f"unknown pick order {order!r}")


def ranking(dets: Detections, order: str) -> np.ndarray:
    """Instance indices in ``order``, ties to the higher score, then the earlier instance."""
    n = len(dets)
    # np.lexsort sorts by the last key first.
    return np.lexsort((np.arange(n), -dets.scores.astype(np.float64), rank_key(dets, order)))


def pick_instances(dets: Detections, pick: Pick, *, what: str = "instance", asked: str | None = None) -> np.ndarray:
    """Indices (ascending) of the instances of ``dets`` that ``pick`` keeps.

    ``dets`` are one label's instances (``what`` names it in messages: "found 1 dog"); ``asked``
    is the user's own wording for the error message, by default the pick described in words.
    No instances give no indices: the caller reports what was not found."""
    n = len(dets)
    if pick.order == "all" or n == 0:
        return np.arange(n)
    if pick.order == "index":
        bad = [i for i in pick.indices if not -n <= i < n]
        if bad:
            raise InvalidOptionError(f"--pick: instance index {bad[0]} out of range: {n} found")
        order = ranking(dets, "score")
        return np.array(sorted({int(order[i]) for i in pick.indices}), dtype=np.int64)
    first, last = pick.rank - 1, pick.rank - 1 + pick.count
    if last > n and not pick.at_most:
        raise NothingFoundError([what], f"asked for {asked or pick.describe()}, found {n} {plural(what, n)}")
    return np.sort(ranking(dets, pick.order)[first:last])




def pick_phrases(dets: Detections, phrases: Sequence[Phrase], default: Pick = Pick()) -> tuple[np.ndarray, list[str]]:
    """Apply each phrase's pick to the instances of its label; ``default`` (``--pick``) serves the
    phrases that say nothing about which one.

    Returns the indices (ascending) of the instances kept by any phrase, and the phrases whose
    label has no instance at all (``--find "cat. rocket"`` with only cats: ``["rocket"]``). A
    phrase that asks for more than its label has (the second dog from the right, of one dog) raises
    :class:`NothingFoundError`: that is a request that cannot be met, not a missing label."""
    kept: set[int] = set()
    missing: list[str] = []
    labels = np.array(dets.labels, dtype=object)
    for phrase in phrases:
        group = np.flatnonzero(labels == phrase.label)
        if not len(group):
            missing.append(phrase.text)
            continue
        pick = phrase.pick if phrase.pick != Pick() else default
        asked = phrase.text if pick is phrase.pick else None
        chosen = pick_instances(dets[group], pick, what=phrase.label or "instance", asked=asked)
        kept.update(int(i) for i in group[chosen])
    return np.array(sorted(kept), dtype=np.int64), missing


__all__ = ["pick_instances", "pick_phrases", "ranking", "rank_key"]
