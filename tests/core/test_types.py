"""The Detections record: shape checks, indexing, concat, areas."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.core.types import Detections

# ---------------------------------------------------------------- Detections


def _detections(with_masks=True) -> Detections:
    masks = np.zeros((3, 5, 8), bool)
    masks[0, :1, :2] = True     # area 2
    masks[1, :, :] = True       # area 40
    masks[2, 2:4, 2:5] = True   # area 6
    return Detections(
        xyxy=[[0, 0, 2, 1], [0, 0, 8, 5], [2, 2, 5, 4]],
        scores=[0.5, 0.9, 0.7],
        labels=["cat", "sofa", "cat"],
        masks=masks if with_masks else None,
    )


def test_detections_coerces_types_and_infers_image_size():
    det = _detections()
    assert det.xyxy.dtype == np.float32 and det.xyxy.shape == (3, 4)
    assert det.scores.dtype == np.float32 and det.scores.shape == (3,)
    assert det.labels == ("cat", "sofa", "cat")
    assert det.masks.dtype == bool
    assert det.image_size == (8, 5)  # (width, height)
    assert len(det) == 3
    assert Detections([1, 2, 3, 4], [0.5], ["x"]).xyxy.shape == (1, 4)


def test_detections_keeps_an_explicit_image_size():
    assert Detections([[0, 0, 1, 1]], [1.0], ["x"], image_size=(640, 480)).image_size == (640, 480)


@pytest.mark.parametrize("kwargs, message", [
    (dict(xyxy=np.zeros((2, 4)), scores=[1.0], labels=["a", "b"]), "Detections: 2 boxes, 1 scores, 2 labels"),
    (dict(xyxy=np.zeros((2, 4)), scores=[1.0, 1.0], labels=["a"]), "Detections: 2 boxes, 2 scores, 1 labels"),
    (dict(xyxy=np.zeros((1, 4)), scores=[1.0], labels=["a"], masks=np.zeros((2, 3, 3))),
     r"masks must be \(N, H, W\) with N=1, got \(2, 3, 3\)"),
    (dict(xyxy=np.zeros((1, 4)), scores=[1.0], labels=["a"], masks=np.zeros((3, 3))),
     r"masks must be \(N, H, W\) with N=1, got \(3, 3\)"),
    (dict(xyxy=np.zeros(6), scores=[1.0], labels=["a"]), "cannot reshape"),
])
def test_detections_shape_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Detections(**kwargs)


@pytest.mark.parametrize("index, expected", [
    (1, [1]),
    (-1, [2]),
    (np.int64(2), [2]),
    (slice(1, None), [1, 2]),
    (np.array([True, False, True]), [0, 2]),
    ([2, 0], [2, 0]),
    (np.array([], dtype=np.int64), []),
])
def test_detections_indexing_returns_a_new_record(index, expected):
    det = _detections()
    sub = det[index]
    assert isinstance(sub, Detections)
    assert len(sub) == len(expected)
    np.testing.assert_array_equal(sub.xyxy, det.xyxy[expected])
    np.testing.assert_array_equal(sub.scores, det.scores[expected])
    assert sub.labels == tuple(det.labels[i] for i in expected)
    np.testing.assert_array_equal(sub.masks, det.masks[expected])
    assert sub.image_size == det.image_size


def test_detections_boolean_filter_by_score():
    det = _detections()
    assert det[det.scores > 0.6].labels == ("sofa", "cat")


def test_detections_empty():
    empty = Detections.empty((10, 20))
    assert len(empty) == 0
    assert empty.xyxy.shape == (0, 4) and empty.scores.shape == (0,)
    assert empty.labels == () and empty.masks is None and empty.image_size == (10, 20)
    assert empty.areas.tolist() == []


def test_detections_concat():
    det = _detections()
    both = Detections.concat([det[[0]], Detections.empty(), det[[1, 2]]])
    assert both.labels == det.labels
    np.testing.assert_array_equal(both.xyxy, det.xyxy)
    np.testing.assert_array_equal(both.masks, det.masks)
    assert both.image_size == (8, 5)
    # mixing records with and without masks drops the masks rather than misaligning them
    mixed = Detections.concat([det[[0]], _detections(with_masks=False)[[1]]])
    assert mixed.masks is None and mixed.labels == ("cat", "sofa")
    assert len(Detections.concat([])) == 0
    assert len(Detections.concat([Detections.empty(), Detections.empty()])) == 0


def test_detections_areas():
    assert _detections().areas.tolist() == [2, 40, 6]
    assert _detections().areas.dtype == np.int64
    no_masks = Detections([[0, 0, 2, 1], [0, 0, 8, 5], [2.5, 2, 5, 4.5], [5, 5, 3, 9]], [1, 1, 1, 1], "abcd")
    # box areas: 2, 40, 2.5 * 2.5 = 6.25 -> 6, and an inverted box counts as 0
    assert no_masks.areas.tolist() == [2, 40, 6, 0]


def test_detections_with_masks():
    plain = _detections(with_masks=False)
    assert plain.masks is None and plain.image_size is None
    masks = np.zeros((3, 4, 6), np.uint8)
    masks[0, 0, 0] = 1
    filled = plain.with_masks(masks)
    assert filled.masks.dtype == bool and filled.image_size == (6, 4)
    assert filled.areas.tolist() == [1, 0, 0]
    assert plain.masks is None  # records are immutable values
    with pytest.raises(ValueError, match="masks must be"):
        plain.with_masks(np.zeros((2, 4, 6), bool))
