"""The detectors (Grounding DINO, OWLv2) with the tiny models: cached raw scores, batched passes
equal single ones, their declared defaults, their scoring, and reference equivalence with the
processors' documented post-processing on the same tiny model."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from promptpaint.backends import detectors
from promptpaint.backends.detectors import GroundingDinoDetector, Owlv2Detector, label_scores
from promptpaint.backends.registry import resolve
from promptpaint.core.geometry import clamp_boxes
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


@pytest.fixture(scope="module")
def gdino(tiny):
    return GroundingDinoDetector(resolve(str(tiny["grounding-dino"])), "cpu", "auto")


@pytest.fixture(scope="module")
def owlv2(tiny):
    """The tiny OWLv2 with its logit shift and scale damped: random ones saturate every score to 0
    or 1 whatever the query, and a test of queries and labels needs them to matter (this instance
    is not the process-wide cached one)."""
    det = Owlv2Detector(resolve(str(tiny["owlv2"])), "cpu", "auto")
    with torch.no_grad():
        for layer in (det.model.class_head.logit_shift, det.model.class_head.logit_scale):
            layer.weight.mul_(0.01)
            layer.bias.zero_()
    return det


@pytest.fixture()
def no_nms(monkeypatch):
    """Duplicate suppression off: the documented routes have none."""
    monkeypatch.setattr(detectors, "NMS_IOU", 1.0)


# ------------------------------------------------------------------ declared defaults

@pytest.mark.parametrize(("cls", "box", "text"), [
    (GroundingDinoDetector, 0.4, 0.3),  # the model card's example
    (Owlv2Detector, 0.1, None),  # transformers' post_process_object_detection default; no text threshold
])
def test_each_detector_declares_its_own_default_thresholds(cls, box, text):
    assert (cls.default_box_threshold, cls.default_text_threshold) == (box, text)


def test_no_threshold_given_means_the_detectors_defaults(gdino, owlv2, cat_rgb):
    for det in (gdino, owlv2):
        implicit = det.detect(cat_rgb, ["cat", "dog"])
        explicit = det.detect(cat_rgb, ["cat", "dog"], det.default_box_threshold, det.default_text_threshold)
        np.testing.assert_array_equal(implicit.xyxy, explicit.xyxy)
        assert implicit.labels == explicit.labels


def test_a_detector_without_a_text_threshold_ignores_one_given(owlv2, cat_rgb):
    """OWLv2 has no text threshold: one given (a threshold no box passes) filters nothing."""
    plain = owlv2.detect(cat_rgb, ["cat", "dog"], 0.0)
    given = owlv2.detect(cat_rgb, ["cat", "dog"], 0.0, 1.0)
    assert len(plain) > 0
    np.testing.assert_array_equal(given.xyxy, plain.xyxy)
    assert given.labels == plain.labels


# ------------------------------------------------------------------ Grounding DINO: mean over a label's tokens

def test_label_scores_are_the_mean_over_each_labels_tokens():
    probs = np.array([[0.1, 0.9, 0.9, 0.2], [0.6, 0.8, 0.4, 0.0]], np.float32)
    spans = [[0, 1], [2], []]
    np.testing.assert_allclose(label_scores(probs, spans), [[0.5, 0.9, 0.0], [0.7, 0.4, 0.0]])


def test_a_label_sharing_a_token_with_another_does_not_tie_with_it(gdino, cat_rgb, monkeypatch):
    """"red car" and "car": a query that sees a car but nothing red is a "car" (scored by the max
    over tokens, both labels reach the shared token's 0.9 and the first listed wins)."""
    labels = ["red car", "car"]
    inputs = gdino.processor(images=Image.fromarray(cat_rgb), text="red car. car.", return_tensors="pt")
    ids = inputs["input_ids"][0].tolist()
    red, car_1, car_2 = (ids.index(gdino.processor.tokenizer.convert_tokens_to_ids(t), start)
                         for t, start in (("red", 0), ("car", 0), ("car", ids.index(1012))))
    logits = torch.full((1, 2, 256), -9.0)
    logits[0, 0, [red, car_1, car_2]] = torch.logit(torch.tensor([0.05, 0.9, 0.9]))  # a car, not red
    logits[0, 1, [red, car_1, car_2]] = torch.logit(torch.tensor([0.8, 0.8, 0.3]))  # a red car
    boxes = torch.tensor([[[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2]]])
    monkeypatch.setattr(gdino, "_run", lambda inputs: SimpleNamespace(logits=logits, pred_boxes=boxes))
    found = gdino.detect(np.ascontiguousarray(cat_rgb[:, :-1]), labels, 0.5, 0.5)  # a new image: not cached
    order = np.argsort(found.xyxy[:, 0])
    assert [found.labels[i] for i in order] == ["car", "red car"]
    np.testing.assert_allclose(found.scores[order], [0.9, (0.8 + 0.8) / 2], rtol=1e-6)


# ------------------------------------------------------------------ OWLv2: one query template

def test_owlv2_queries_use_one_template_for_every_label(owlv2, cat_rgb, monkeypatch):
    seen = []
    processor = owlv2.processor

    def spy(*args, **kwargs):
        seen.append(kwargs["text"])
        return processor(*args, **kwargs)

    monkeypatch.setattr(owlv2, "processor", spy)
    owlv2.detect(np.ascontiguousarray(cat_rgb[:-1]), ["cat", "red car"], 0.1)
    assert seen == [[["a photo of a cat", "a photo of a red car"]]]


# ------------------------------------------------------------------ reference equivalence

def _documented_forward(det, image, **inputs_kwargs):
    inputs = det.processor(images=Image.fromarray(image), return_tensors="pt", **inputs_kwargs)
    with torch.inference_mode():
        return inputs, det.model(**inputs)


def _clamped(boxes, image) -> tuple[np.ndarray, np.ndarray]:
    """The documented boxes clamped to the image (as ours are), and which are not empty after it."""
    h, w = image.shape[:2]
    clamped = clamp_boxes(boxes.numpy(), (w, h))
    return clamped, (clamped[:, 2] > clamped[:, 0]) & (clamped[:, 3] > clamped[:, 1])


def _by_position(xyxy: np.ndarray) -> np.ndarray:
    return np.lexsort(xyxy.T[::-1])


def test_owlv2_equals_post_process_grounded_object_detection(owlv2, cat_rgb, no_nms):
    """Same boxes, scores and labels as the documented route; ours are clamped to the image
    (the only intended difference besides duplicate suppression, which is off here)."""
    labels = ["cat", "dog", "red car"]
    square = np.ascontiguousarray(cat_rgb[:, :300])  # OWLv2 pads to a square: no box falls off it
    h, w = square.shape[:2]
    queries = [[f"a photo of a {label}" for label in labels]]
    _, outputs = _documented_forward(owlv2, square, text=queries)
    threshold = float(torch.sigmoid(outputs.logits.max(-1).values).quantile(0.25))  # most of its 16 boxes
    (doc,) = owlv2.processor.post_process_grounded_object_detection(
        outputs, threshold=threshold, target_sizes=[(h, w)], text_labels=[labels])
    boxes, kept = _clamped(doc["boxes"], square)
    ours = owlv2.detect(square, labels, threshold)
    assert 3 <= len(ours) == kept.sum() and len(set(ours.labels)) > 1
    a, b = _by_position(ours.xyxy), _by_position(boxes[kept])
    np.testing.assert_array_equal(ours.xyxy[a], boxes[kept][b])
    np.testing.assert_array_equal(ours.scores[a], doc["scores"].numpy()[kept][b])
    assert [ours.labels[i] for i in a] == [np.array(doc["text_labels"])[kept][i] for i in b]


def _token_spans_by_characters(tokenizer, text: str, labels: list[str]) -> list[list[int]]:
    """Each label's token positions found from character offsets: independent of our '.'-splitting."""
    encoding = tokenizer(text)
    spans, start = [], 0
    for label in labels:
        begin = text.index(label, start)
        start = begin + len(label)
        spans.append(sorted({encoding.char_to_token(c) for c in range(begin, start) if text[c] != " "}))
    return spans


def test_grounding_dino_equals_post_process_grounded_object_detection(gdino, cat_rgb, no_nms):
    """Same kept boxes and coordinates as the documented route (box score = max over all tokens);
    our score and label are each box's best label by the mean over that label's tokens, computed
    here from the documented route's token probabilities (the one intended difference, with
    clamping to the image and duplicate suppression, off here)."""
    labels = ["cat", "red car", "dog"]
    h, w = cat_rgb.shape[:2]
    text = "cat. red car. dog."
    inputs, outputs = _documented_forward(gdino, cat_rgb, text=labels)  # the processor joins them as `text`
    assert gdino.processor.tokenizer.decode(inputs["input_ids"][0], skip_special_tokens=True).replace(" .", ".") == text
    threshold = float(torch.sigmoid(outputs.logits).max(-1).values.median())
    (doc,) = gdino.processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=threshold, text_threshold=0.0, target_sizes=[(h, w)])
    boxes, kept = _clamped(doc["boxes"], cat_rgb)
    probs = torch.sigmoid(outputs.logits[0]).numpy()[(torch.sigmoid(outputs.logits[0]).max(-1).values > threshold).numpy()]
    per_label = label_scores(probs, _token_spans_by_characters(gdino.processor.tokenizer, text, labels))

    ours = gdino.detect(cat_rgb, labels, threshold, 0.0)
    assert 3 <= len(ours) == kept.sum() and len(set(ours.labels)) > 1
    a, b = _by_position(ours.xyxy), _by_position(boxes[kept])
    np.testing.assert_array_equal(ours.xyxy[a], boxes[kept][b])
    np.testing.assert_array_equal(ours.scores[a], per_label.max(axis=1)[kept][b])
    assert [ours.labels[i] for i in a] == [labels[j] for j in per_label.argmax(axis=1)[kept][b]]


def test_an_owlv2_query_longer_than_its_16_tokens_is_cut_not_refused(owlv2, cat_rgb):
    long_label = "remote control lying on a striped sofa"  # spelled out letter by letter by the tiny tokenizer
    assert len(owlv2.processor.tokenizer(f"a photo of a {long_label}")["input_ids"]) > 16
    found = owlv2.detect(cat_rgb, ["cat", long_label], 0.0)
    assert set(found.labels) <= {"cat", long_label}
