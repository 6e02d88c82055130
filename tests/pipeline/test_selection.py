"""Selection through the Pipeline with the tiny models: one encoding for many prompts, all labels
in one detector pass, the mask algebra, user masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from promptpaint.errors import UnsupportedOperationError
from promptpaint.pipeline.pipeline import Pipeline


def test_image_encoded_once_for_many_prompts(tiny, cat_rgb):
    pipe = Pipeline(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]), device="cpu")
    segmenter = pipe.segmenter()
    image = cat_rgb.copy()
    image[0, 0] = (1, 2, 3)  # content no other test used: a fresh cache key
    before = segmenter.encode_count
    calls = []
    detector = pipe.detector()
    original = detector.detect
    detector.detect = lambda *a, **k: calls.append(a[1]) or original(*a, **k)
    try:
        pipe.segment(image, find="cat. tree", box_threshold=0, text_threshold=0)
        pipe.segment(image, find="dog", exclude="face", box_threshold=0, text_threshold=0)
        pipe.segment(image, box="10,10,100,100")
    finally:
        detector.detect = original
    assert segmenter.encode_count - before == 1
    assert calls == [["cat", "tree"], ["dog", "face"]]  # every label of a request in one pass


def test_sam3_encodes_once_for_all_labels(tiny, cat_rgb):
    pipe = Pipeline(segmenter=str(tiny["sam3"]), device="cpu")
    sam3 = pipe.segmenter()
    image = cat_rgb.copy()
    image[0, 0] = (7, 7, 7)
    before = sam3.encode_count
    seg = pipe.segment(image, find="cat. tree. sky", box_threshold=0)
    pipe.segment(image, find="dog", box_threshold=0)
    assert sam3.encode_count - before == 1
    assert set(seg.detections.labels) == {"cat", "tree", "sky"}
    with pytest.raises(UnsupportedOperationError):
        pipe.segment(image, box="0,0,10,10")


def test_exclude_subtracts_and_algebra_applies(tiny, cat_rgb):
    pipe = Pipeline(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]), device="cpu")
    seg = pipe.segment(cat_rgb, find="cat", exclude="face", box_threshold=0, text_threshold=0)
    assert seg.detections.labels and set(seg.detections.labels) == {"cat"}
    assert set(seg.excluded.labels) == {"face"}
    expected = np.logical_or.reduce(seg.detections.masks) & ~np.logical_or.reduce(seg.excluded.masks)
    assert np.array_equal(seg.mask, expected)
    inverted = pipe.segment(cat_rgb, find="cat", exclude="face", box_threshold=0, text_threshold=0, invert=True)
    assert np.array_equal(inverted.mask, ~expected)
    largest = pipe.segment(cat_rgb, find="cat", box_threshold=0, text_threshold=0, pick="largest")
    assert len(largest.detections) == 1


def test_user_mask_skips_detection_and_segmentation(tmp_path, cat_rgb):
    mask = np.zeros(cat_rgb.shape[:2], bool)
    mask[20:60, 30:90] = True
    path = tmp_path / "m.png"
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    pipe = Pipeline(detector="/no/such", segmenter="/no/such", device="cpu")
    seg = pipe.segment(cat_rgb, mask=str(path), dilate=2)
    assert seg.mask.sum() > mask.sum() and seg.mask[mask].all()
    assert seg.detections.labels == ("mask",)
