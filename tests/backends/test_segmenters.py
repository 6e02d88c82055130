"""SAM and SAM 2: batched encodings equal single ones, how boxes and points make prompts, single-
vs multi-mask output, and reference equivalence with the processor + model + ``post_process_masks``
route on the same tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from promptpaint.backends.registry import resolve
from promptpaint.backends.segmenters import Sam2Segmenter, SamSegmenter, group_prompts
from promptpaint.errors import InvalidOptionError


BOX_A = [40, 30, 200, 180]
BOX_B = [150, 100, 400, 280]  # overlaps A at x 150..200, y 100..180


def _prompts(boxes, points):
    return [(None if p.box is None else p.box.tolist(), p.points.tolist())
            for p in group_prompts(None if boxes is None else np.array(boxes), None if points is None else np.array(points))]


@pytest.mark.parametrize(("boxes", "points", "expected"), [
    ([BOX_A, BOX_B], None, [(BOX_A, []), (BOX_B, [])]),
    ([BOX_A], [[100, 100, 0]], [(BOX_A, [[100, 100, 0]])]),  # a negative point cuts from its box's object
    ([BOX_A], [[100, 100, 1]], [(BOX_A, [[100, 100, 1]])]),
    ([BOX_A], [[300, 250, 1]], [(BOX_A, []), (None, [[300, 250, 1]])]),  # outside every box: its own object
    ([BOX_A], [[300, 250, 1], [320, 260, 0]], [(BOX_A, []), (None, [[300, 250, 1], [320, 260, 0]])]),
    ([BOX_A], [[300, 250, 0]], [(BOX_A, [[300, 250, 0]])]),  # a lone negative outside can only cut
    ([BOX_A, BOX_B], [[60, 50, 0]], [(BOX_A, [[60, 50, 0]]), (BOX_B, [])]),
    ([BOX_A, BOX_B], [[180, 150, 0]], [(BOX_A, [[180, 150, 0]]), (BOX_B, [[180, 150, 0]])]),  # in both
    ([BOX_A], [[40, 180, 0]], [(BOX_A, [[40, 180, 0]])]),  # on the edge counts as inside
    (None, [[10, 10, 1], [20, 20, 0]], [(None, [[10, 10, 1], [20, 20, 0]])]),
    (None, None, []),
])
def test_group_prompts(boxes, points, expected):
    assert _prompts(boxes, points) == expected


def test_points_with_no_positive_point_and_no_box_are_refused():
    with pytest.raises(InvalidOptionError, match="no positive point"):
        group_prompts(None, np.array([[10, 10, 0], [20, 20, 0]]))


@pytest.mark.parametrize(("boxes", "points", "multimask"), [
    (None, [[10, 10, 1]], True),  # one click is ambiguous: three candidates, best IoU kept
    (None, [[10, 10, 1], [30, 30, 1]], False),
    ([BOX_A], None, False),
    ([BOX_A], [[50, 50, 0]], False),
])
def test_only_a_single_point_asks_for_several_masks(boxes, points, multimask):
    (prompt,) = group_prompts(None if boxes is None else np.array(boxes), None if points is None else np.array(points))
    assert prompt.multimask is multimask


# ------------------------------------------------------------------ the backends

CLASSES = {"sam": SamSegmenter, "sam2": Sam2Segmenter}


@pytest.fixture(scope="module", params=["sam", "sam2"])
def family(request):
    return request.param


@pytest.fixture(scope="module")
def segmenter(tiny, family):
    return CLASSES[family](resolve(str(tiny[family])), "cpu", "auto")


def test_a_negative_point_in_a_box_cuts_from_that_boxs_object(segmenter, cat_rgb):
    """One object, one mask: not the box's mask plus a negative-only prompt's arbitrary one."""
    masks, scores = segmenter.segment(cat_rgb, boxes=np.array([BOX_A]), points=np.array([[100, 100, 0]]))
    assert masks.shape == (1, *cat_rgb.shape[:2]) and scores.shape == (1,)
    alone, _ = segmenter.segment(cat_rgb, boxes=np.array([BOX_A]))
    assert (masks[0] != alone[0]).any()  # the point changed the box's mask


def test_masks_come_in_prompt_order(segmenter, cat_rgb):
    """Boxes first in their order (whatever decoder call served them), then the free points."""
    boxes = np.array([BOX_A, BOX_B])
    points = np.array([[60, 50, 0], [420, 40, 1]])  # a negative in A; a positive in no box
    masks, _ = segmenter.segment(cat_rgb, boxes=boxes, points=points)
    assert len(masks) == 3
    a_cut, _ = segmenter.segment(cat_rgb, boxes=boxes[:1], points=points[:1])
    b, _ = segmenter.segment(cat_rgb, boxes=boxes[1:])
    free, _ = segmenter.segment(cat_rgb, points=points[1:])
    np.testing.assert_array_equal(masks, np.concatenate([a_cut, b, free]))


def test_many_boxes_are_brought_to_full_size_a_few_at_a_time(segmenter, cat_rgb, monkeypatch):
    """The full-size upscaling goes in chunks (bounded memory for many boxes): same masks."""
    from promptpaint.backends import segmenters

    rng = np.random.default_rng(0)
    corner = rng.integers(0, 200, (11, 2))
    boxes = np.concatenate([corner, corner + rng.integers(20, 200, (11, 2))], axis=1).astype(np.float32)
    chunked, chunked_scores = segmenter.segment(cat_rgb, boxes=boxes)
    monkeypatch.setattr(segmenters, "UPSCALE_CHUNK", 1000)
    whole, whole_scores = segmenter.segment(cat_rgb, boxes=boxes)
    assert segmenters.UPSCALE_CHUNK != 8 and chunked.shape == (11, *cat_rgb.shape[:2])
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(chunked_scores, whole_scores)


# ------------------------------------------------------------------ reference equivalence

def _documented(segmenter, family, image, multimask, **prompts):
    """processor(images, prompts) -> model(**inputs) -> post_process_masks, as each model card shows;
    a multimask answer keeps the candidate with the best predicted IoU."""
    inputs = segmenter.processor(images=Image.fromarray(image), return_tensors="pt", **prompts)
    with torch.inference_mode():
        out = segmenter.model(**inputs, multimask_output=multimask)
    if family == "sam":
        masks = segmenter.processor.post_process_masks(out.pred_masks, inputs["original_sizes"],
                                                      inputs["reshaped_input_sizes"])[0]
    else:
        masks = segmenter.processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0]
    best = out.iou_scores[0].argmax(-1)
    return masks[torch.arange(len(best)), best].numpy(), out.iou_scores[0].max(-1).values.numpy()


@pytest.mark.parametrize("case", ["boxes", "one point", "points", "box and points"])
def test_masks_equal_the_processor_and_model_route(segmenter, family, cat_rgb, case):
    ours_args, documented_args, multimask = {
        "boxes": (dict(boxes=np.array([BOX_A, BOX_B])), dict(input_boxes=[[BOX_A, BOX_B]]), False),
        "one point": (dict(points=np.array([[120, 90, 1]])),
                      dict(input_points=[[[[120, 90]]]], input_labels=[[[1]]]), True),
        "points": (dict(points=np.array([[120, 90, 1], [300, 200, 1], [150, 120, 0]])),
                   dict(input_points=[[[[120, 90], [300, 200], [150, 120]]]], input_labels=[[[1, 1, 0]]]), False),
        "box and points": (dict(boxes=np.array([BOX_A]), points=np.array([[100, 100, 0], [60, 60, 1]])),
                           dict(input_boxes=[[BOX_A]], input_points=[[[[100, 100], [60, 60]]]],
                                input_labels=[[[0, 1]]]), False),
    }[case]
    if family == "sam" and "input_points" in documented_args:  # SamProcessor nests one level less
        documented_args["input_points"] = documented_args["input_points"][0]
        documented_args["input_labels"] = documented_args["input_labels"][0]
    masks, scores = segmenter.segment(cat_rgb, **ours_args)
    expected_masks, expected_scores = _documented(segmenter, family, cat_rgb, multimask, **documented_args)
    np.testing.assert_array_equal(masks, expected_masks)
    np.testing.assert_array_equal(scores, expected_scores)


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
