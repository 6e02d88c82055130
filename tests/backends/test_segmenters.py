"""The segmenters (SAM, SAM 2) with the tiny models: batched encodings equal single ones."""

from __future__ import annotations

import numpy as np
import pytest


# ------------------------------------------------------------------------- tiny models, real backends
def photos(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), np.uint8) for w, h in sizes]


def tensors(embeddings):
    return [embeddings] if hasattr(embeddings, "shape") else list(embeddings)


@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_batched_encodings_match_single_ones(tiny, family):
    from promptpaint.pipeline.pipeline import Pipeline

    segmenter = Pipeline(segmenter=str(tiny[family]), device="cpu").segmenter()
    images = photos([(160, 120), (120, 160), (96, 64)], seed=3)
    before = segmenter.encode_count
    segmenter.encode_many(images + [images[0]])  # a repeated image is encoded once
    assert segmenter.encode_count == before + 3
    for image in images:
        batched = segmenter.encode(image)  # from the cache
        alone = segmenter._encode([image])[0]
        assert (batched.original_size, batched.resized_size) == (alone.original_size, alone.resized_size)
        for b, a in zip(tensors(batched.embeddings), tensors(alone.embeddings), strict=True):
            assert b.shape == a.shape and b.shape[0] == 1
            assert (b - a).abs().max().item() < 1e-4
    assert segmenter.encode_count == before + 3
    masks, _ = segmenter.segment(images[1], boxes=np.array([[10, 10, 60, 50]], np.float32))
    assert masks.shape == (1, 160, 120)
