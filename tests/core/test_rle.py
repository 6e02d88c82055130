"""COCO RLE round trips, checked against pycocotools."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from promptpaint.core import rle

# ---------------------------------------------------------------- RLE


def test_rle_is_column_major_like_pycocotools():
    mask = np.array([[0, 1, 1],
                     [0, 0, 1]], bool)
    encoded = rle.encode(mask)
    # column by column: 0 0 | 1 0 | 1 1 -> runs of 2 zeros, 1 one, 1 zero, 2 ones
    reference = coco_mask.frPyObjects({"size": [2, 3], "counts": [2, 1, 1, 2]}, 2, 3)
    assert encoded == {"size": [2, 3], "counts": reference["counts"].decode("ascii")}
    assert encoded["counts"] == "2111"
    np.testing.assert_array_equal(rle.decode(encoded), mask)


@pytest.mark.parametrize("mask, counts", [
    (np.zeros((3, 4), bool), "<"),          # one run of 12 zeros
    (np.ones((3, 4), bool), "0<"),          # no zeros, then 12 ones
    (np.ones((1, 1), bool), "01"),
    (np.zeros((1, 1), bool), "1"),
])
def test_rle_exact_counts(mask, counts):
    encoded = rle.encode(mask)
    assert encoded == {"size": list(mask.shape), "counts": counts}
    np.testing.assert_array_equal(rle.decode(encoded), mask)


def _random_masks():
    rng = np.random.default_rng(7)
    shapes = [(1, 1), (1, 17), (17, 1), (2, 3), (7, 13), (13, 7), (64, 48), (97, 101), (300, 451)]
    for shape in shapes:
        for fill in (0.0, 0.03, 0.5, 0.97, 1.0):
            yield rng.random(shape) < fill
    blob = np.zeros((50, 60), bool)
    blob[10:30, 5:55] = True
    yield blob
    yield np.zeros((0, 5), bool)
    yield np.zeros((5, 0), bool)


@pytest.mark.parametrize("mask", list(_random_masks()), ids=lambda m: f"{m.shape}-{int(m.sum())}")
def test_rle_round_trip(mask):
    encoded = rle.encode(mask)
    assert encoded["size"] == list(mask.shape)
    assert all(type(v) is int for v in encoded["size"])
    assert isinstance(encoded["counts"], str)
    decoded = rle.decode(json.loads(json.dumps(encoded)))
    assert decoded.dtype == bool and decoded.shape == mask.shape
    np.testing.assert_array_equal(decoded, mask)
    if mask.size:
        ours = {"size": encoded["size"], "counts": encoded["counts"].encode("ascii")}
        assert int(coco_mask.area(ours)) == int(mask.sum())


def test_rle_accepts_views_non_bool_and_byte_counts():
    rng = np.random.default_rng(0)
    big = rng.random((40, 50)) < 0.4
    view = big[3::2, 1::3]  # not contiguous
    np.testing.assert_array_equal(rle.decode(rle.encode(view)), view)
    as_uint8 = view.astype(np.uint8) * 255
    assert rle.encode(as_uint8) == rle.encode(view)
    encoded = rle.encode(view)
    with_bytes = {"size": encoded["size"], "counts": encoded["counts"].encode("ascii")}
    np.testing.assert_array_equal(rle.decode(with_bytes), view)


def test_rle_decodes_what_pycocotools_encodes():
    mask = np.zeros((20, 30), np.uint8)
    mask[2:9, 4:25] = 1
    theirs = coco_mask.encode(np.asfortranarray(mask))
    np.testing.assert_array_equal(rle.decode({"size": theirs["size"], "counts": theirs["counts"]}), mask.astype(bool))
