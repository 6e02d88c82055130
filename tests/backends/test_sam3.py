"""SAM 3: text prompts against ``post_process_instance_segmentation``, box and point prompts
through its tracker against the tracker's documented route, on the same tiny models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from promptpaint.backends.registry import resolve
from promptpaint.backends.sam3 import MASK_THRESHOLD, Sam3TextSegmenter
from promptpaint.core.geometry import clamp_boxes
from promptpaint.errors import UnsupportedOperationError
from promptpaint.testing.tiny_models import build_sam3_full


@pytest.fixture(scope="module")
def sam3(tiny):
    """The kit's SAM 3: the text detector alone."""
    return Sam3TextSegmenter(resolve(str(tiny["sam3"])), "cpu", "auto")


@pytest.fixture(scope="module")
def sam3_full(tmp_path_factory):
    """A twin of the full facebook/sam3 checkpoint: text detector and tracker."""
    folder = build_sam3_full(tmp_path_factory.mktemp("sam3-full"))
    return folder, Sam3TextSegmenter(resolve(str(folder)), "cpu", "auto")


def test_sam3_declares_its_processors_default_threshold(sam3, cat_rgb):
    assert (Sam3TextSegmenter.default_box_threshold, Sam3TextSegmenter.default_text_threshold) == (0.3, None)
    implicit, explicit = sam3.detect_and_segment(cat_rgb, ["cat"]), sam3.detect_and_segment(cat_rgb, ["cat"], 0.3)
    np.testing.assert_array_equal(implicit.masks, explicit.masks)


@pytest.mark.parametrize("labels", [["cat"], ["cat", "red car"]])
def test_text_prompts_equal_post_process_instance_segmentation(sam3, cat_rgb, labels):
    """Per label: the documented call (processor(images, text) -> model -> post-processing). Ours
    runs all labels against one image encoding, clamps boxes to the image and drops instances
    whose mask is empty at full size (the intended differences)."""
    h, w = cat_rgb.shape[:2]
    threshold = 0.0  # every query: the tiny model's scores mean nothing
    ours = sam3.detect_and_segment(cat_rgb, labels, threshold)
    expected_masks, expected_boxes, expected_scores, expected_labels = [], [], [], []
    for label in labels:
        inputs = sam3.processor(images=Image.fromarray(cat_rgb), text=label, return_tensors="pt")
        with torch.inference_mode():
            outputs = sam3.model(**inputs)
        (doc,) = sam3.processor.post_process_instance_segmentation(
            outputs, threshold=threshold, mask_threshold=MASK_THRESHOLD, target_sizes=[(h, w)])
        keep = doc["masks"].reshape(len(doc["masks"]), -1).any(1).numpy()
        expected_masks.append(doc["masks"].numpy().astype(bool)[keep])
        expected_boxes.append(clamp_boxes(doc["boxes"].numpy()[keep], (w, h)))
        expected_scores.append(doc["scores"].numpy()[keep])
        expected_labels += [label] * int(keep.sum())
    assert len(ours) == len(expected_labels) > 0
    np.testing.assert_array_equal(ours.masks, np.concatenate(expected_masks))
    np.testing.assert_allclose(ours.xyxy, np.concatenate(expected_boxes), atol=1e-4)
    np.testing.assert_allclose(ours.scores, np.concatenate(expected_scores), atol=1e-6)
    assert list(ours.labels) == expected_labels


def test_a_label_with_no_instance_above_the_threshold_finds_nothing_without_failing(sam3, cat_rgb):
    found = sam3.detect_and_segment(cat_rgb, ["cat", "dog"], 1.0)
    assert len(found) == 0 and found.image_size == (cat_rgb.shape[1], cat_rgb.shape[0])


def test_sam3_takes_boxes_and_points_when_its_checkpoint_holds_the_tracker(sam3, sam3_full):
    assert not (sam3.takes_boxes or sam3.takes_points)
    assert sam3_full[1].takes_boxes and sam3_full[1].takes_points


def test_a_detector_only_checkpoint_refuses_boxes_in_one_line(sam3, cat_rgb):
    with pytest.raises(UnsupportedOperationError) as caught:
        sam3.segment(cat_rgb, boxes=np.array([[10, 10, 100, 100]]))
    assert "holds only SAM 3's text detector" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("case", ["boxes", "one point", "box and points"])
def test_box_and_point_prompts_equal_the_trackers_documented_route(sam3_full, cat_rgb, case):
    """Sam3TrackerProcessor + Sam3TrackerModel from the same checkpoint, as transformers' SAM3
    Tracker page shows them; ours shares the detector's ViT backbone with the tracker."""
    from transformers import Sam3TrackerModel, Sam3TrackerProcessor

    folder, segmenter = sam3_full
    ours_args, documented_args, multimask = {
        "boxes": (dict(boxes=np.array([[40, 30, 200, 180], [150, 100, 400, 280]])),
                  dict(input_boxes=[[[40, 30, 200, 180], [150, 100, 400, 280]]]), False),
        "one point": (dict(points=np.array([[120, 90, 1]])), dict(input_points=[[[[120, 90]]]], input_labels=[[[1]]]), True),
        "box and points": (dict(boxes=np.array([[40, 30, 200, 180]]), points=np.array([[100, 100, 0], [60, 60, 1]])),
                           dict(input_boxes=[[[40, 30, 200, 180]]], input_points=[[[[100, 100], [60, 60]]]],
                                input_labels=[[[0, 1]]]), False),
    }[case]
    masks, scores = segmenter.segment(cat_rgb, **ours_args)

    processor = Sam3TrackerProcessor.from_pretrained(folder)
    model = Sam3TrackerModel.from_pretrained(folder).eval()
    inputs = processor(images=Image.fromarray(cat_rgb), return_tensors="pt", **documented_args)
    with torch.inference_mode():
        out = model(**inputs, multimask_output=multimask)
    documented = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0]
    best = out.iou_scores[0].argmax(-1)
    np.testing.assert_array_equal(masks, documented[torch.arange(len(best)), best].numpy())
    np.testing.assert_array_equal(scores, out.iou_scores[0].max(-1).values.numpy())
    assert 0 < masks.mean() < 1


def test_finding_from_text_then_a_box_runs_the_backbone_once(sam3_full, cat_rgb):
    """Both halves read one ViT backbone: a request that finds from text and also takes a box
    runs it once per image, and the tracker's masks still equal its documented route."""
    from transformers import Sam3TrackerModel, Sam3TrackerProcessor

    folder = sam3_full[0]
    segmenter = Sam3TextSegmenter(resolve(str(folder)), "cpu", "auto")  # fresh caches
    runs = []  # forward calls of the ViT itself, whatever wraps it
    segmenter.model.vision_encoder.backbone.backbone.register_forward_hook(lambda *_: runs.append(1))
    image = cat_rgb.copy()
    image[0, 0] = (3, 1, 4)
    segmenter.detect_and_segment(image, ["cat"], 0.0)
    assert len(runs) == segmenter.backbone_runs == 1
    masks, _ = segmenter.segment(image, boxes=np.array([[40, 30, 200, 180]]))
    assert len(runs) == segmenter.backbone_runs == 1  # the tracker reused the text half's backbone output
    segmenter.detect_and_segment(image, ["dog"], 0.0)
    segmenter.segment(cat_rgb, boxes=np.array([[40, 30, 200, 180]]))
    assert len(runs) == segmenter.backbone_runs == 2  # another image runs it again

    processor = Sam3TrackerProcessor.from_pretrained(folder)
    model = Sam3TrackerModel.from_pretrained(folder).eval()
    inputs = processor(images=Image.fromarray(image), input_boxes=[[[40, 30, 200, 180]]], return_tensors="pt")
    with torch.inference_mode():
        out = model(**inputs, multimask_output=False)
    documented = processor.post_process_masks(out.pred_masks, inputs["original_sizes"])[0][:, 0]
    np.testing.assert_array_equal(masks, documented.numpy())


def test_the_shared_backbone_does_not_cache_calls_that_ask_for_more(sam3_full, cat_rgb):
    from promptpaint.backends.sam3 import SharedBackbone

    segmenter = Sam3TextSegmenter(resolve(str(sam3_full[0])), "cpu", "auto")
    shared = SharedBackbone(segmenter.model.vision_encoder.backbone)
    pixels = torch.zeros(1, 3, 112, 112)
    with torch.inference_mode():
        first, again = shared(pixels), shared(pixels.clone())
        shared(pixels, output_attentions=True)
        shared(pixels.to(torch.float64).float() + 1)
    assert first is again and shared.runs.computed == 2
