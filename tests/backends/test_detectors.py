"""The detectors (Grounding DINO, OWLv2) with the tiny models: cached raw scores, batched passes
equal single ones."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.core.images import image_hash
from promptpaint.pipeline.pipeline import Pipeline


# ------------------------------------------------------------------------- tiny models, real backends
def photos(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), np.uint8) for w, h in sizes]


def spy(obj, name, log):
    """Record the number of images of each call to ``obj.name`` (a backend's batched forward)."""
    original = getattr(obj, name)

    def wrapper(images, *args, **kwargs):
        log.append(len(images))
        return original(images, *args, **kwargs)

    setattr(obj, name, wrapper)
    return lambda: setattr(obj, name, original)


def test_threshold_changes_reuse_the_detector_forward(tiny, cat_rgb):
    """Moving a threshold slider re-filters cached scores: no second forward pass."""
    pipe = Pipeline(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]), device="cpu")
    detector = pipe.detector()
    image = cat_rgb.copy()
    image[1, 1] = (9, 9, 9)
    before = detector.forward_count
    loose = pipe.detect(image, "cat. tree", box_threshold=0, text_threshold=0)
    strict = pipe.detect(image, "cat. tree", box_threshold=float(np.median(loose.scores)), text_threshold=0)
    assert detector.forward_count - before == 1
    assert 0 < len(strict) < len(loose)


@pytest.mark.parametrize("family", ["grounding-dino", "owlv2"])
def test_batched_detections_match_single_ones(tiny, family):
    from promptpaint.pipeline.pipeline import Pipeline

    detector = Pipeline(detector=str(tiny[family]), device="cpu").detector()
    images = photos([(160, 120), (160, 120), (144, 112)], seed=4)
    labels = ["cat", "remote control"]
    forwards = []
    undo = spy(detector, "_forward", forwards)
    try:
        detector.detect_many(images, labels)
        found = [detector.detect(im, labels, 0.0, 0.0) for im in images]
    finally:
        undo()
    assert sorted(forwards) == [1, 2]  # one pass per image size; detect() then hits the cache
    for image, dets in zip(images, found):
        batched = detector._raw.get_or_compute((image_hash(image), tuple(labels)), lambda: None)
        alone = detector._forward([image], labels)[0]
        for b, a in zip(batched, alone, strict=True):
            assert b.shape == a.shape and np.abs(b - a).max() < 1e-3
        assert dets.image_size == (image.shape[1], image.shape[0])
