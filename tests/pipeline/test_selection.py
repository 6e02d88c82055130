"""Selection through the Pipeline with the tiny models: one encoding for many prompts, all labels
in one detector pass, the mask algebra, user masks; and, with oracle models (a detector answering
fixed boxes, a segmenter whose mask is the box), phrases, partial finds and shadows."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from promptpaint.core.types import Detections
from promptpaint.errors import InvalidOptionError, NothingFoundError, UnsupportedOperationError
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


def test_sam3_finds_and_takes_a_box_in_one_backbone_run(tmp_path, cat_rgb):
    """SAM 3 with its tracker: --find and --box together run the ViT backbone once."""
    from promptpaint.testing.tiny_models import build_sam3_full

    pipe = Pipeline(segmenter=str(build_sam3_full(tmp_path / "sam3")), device="cpu")
    runs = []  # forward calls of the ViT itself
    pipe.segmenter().model.vision_encoder.backbone.backbone.register_forward_hook(lambda *_: runs.append(1))
    seg = pipe.segment(cat_rgb, find="cat", box="40,30,200,180", box_threshold=0)
    assert len(runs) == pipe.segmenter().backbone_runs == 1
    assert seg.mask[30:180, 40:200].any()


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


# ------------------------------------------------------------------ phrases, partial finds, shadows (#13)
class BoxDetector:
    """Oracle detector: answers every label it is asked with fixed boxes, in one pass, as a real
    detector does when a shadow is a region of its own beside the object that casts it."""

    model_id = "oracle-detector"
    returns_masks = False
    batches = False
    default_box_threshold = 0.3
    default_text_threshold = 0.25

    def __init__(self, boxes: dict[str, list[list[int]]]):
        self.boxes = boxes
        self.asked: list[list[str]] = []

    def detect(self, image, labels, box_threshold, text_threshold):
        self.asked.append(list(labels))
        h, w = image.shape[:2]
        rows = [(box, label) for label in labels for box in self.boxes.get(label, [])]
        return Detections(np.array([b for b, _ in rows], np.float32).reshape(-1, 4), [0.9] * len(rows),
                          [label for _, label in rows], image_size=(w, h))


class BoxSegmenter:
    """Oracle segmenter: the mask of a box is the box."""

    model_id = "oracle-segmenter"
    takes_boxes = True
    takes_points = False
    finds_from_text = False
    batches = False

    def segment(self, image, boxes=None, points=None):
        h, w = image.shape[:2]
        masks = np.zeros((len(boxes), h, w), bool)
        for mask, (x0, y0, x1, y1) in zip(masks, np.asarray(boxes).astype(int)):
            mask[y0:y1, x0:x1] = True
        return masks, np.ones(len(boxes), np.float32)


#: A 100x60 scene: two cats; the left one's shadow right below it, the right one's shadow after a
#: 1 px seam (as masks of touching things often leave), and a shadow far from both.
SCENE = {"cat": [[10, 10, 30, 30], [60, 10, 80, 30]],
         "shadow": [[10, 30, 40, 36], [60, 31, 90, 38], [40, 50, 55, 58]],
         "reflection": [[30, 12, 36, 20]]}


def _box(x0, y0, x1, y1) -> np.ndarray:
    mask = np.zeros((60, 100), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def oracle_pipeline(boxes=SCENE) -> tuple[Pipeline, BoxDetector]:
    pipe = Pipeline(remover="telea", device="cpu")
    detector, segmenter = BoxDetector(boxes), BoxSegmenter()
    pipe.detector = lambda name=None: detector
    pipe.segmenter = lambda name=None: segmenter
    pipe.preflight = lambda needed: None  # the oracles are no files on disk
    return pipe, detector


IMAGE = np.full((60, 100, 3), 128, np.uint8)
CATS = _box(10, 10, 30, 30) | _box(60, 10, 80, 30)


def test_with_shadow_adds_the_touching_shadows_from_the_same_pass():
    pipe, detector = oracle_pipeline()
    plain = pipe.segment(IMAGE, find="cat")
    assert np.array_equal(plain.mask, CATS) and detector.asked == [["cat"]]
    seg = pipe.segment(IMAGE, find="cat", with_shadow=True)
    assert detector.asked[-1] == ["cat", "shadow"]  # one detector pass
    assert np.array_equal(seg.mask, CATS | _box(10, 30, 40, 36) | _box(60, 31, 90, 38))  # not the far one
    assert seg.detections.labels == ("cat", "cat", "shadow", "shadow")
    assert seg.info["attached"] == {"shadow": {"found": 3, "added": [2, 3]}}
    assert (seg.mask | plain.mask).sum() == seg.mask.sum()  # it contains the mask without shadows


def test_only_the_picked_objects_shadows_go_with_it():
    pipe, _ = oracle_pipeline()
    seg = pipe.segment(IMAGE, find="the left cat", with_shadow=True, with_reflection=True)
    assert np.array_equal(seg.mask, _box(10, 10, 30, 30) | _box(10, 30, 40, 36) | _box(30, 12, 36, 20))
    assert seg.info["attached"] == {"shadow": {"found": 3, "added": [1]}, "reflection": {"found": 1, "added": [2]}}
    assert seg.info["read"] == [{"text": "the left cat", "label": "cat", "pick": "left"}]


def test_remove_with_shadow_removes_the_shadow_and_records_it():
    pipe, detector = oracle_pipeline()
    result = pipe.remove(IMAGE, find="the right cat", with_shadow=True, dilate=0, feather=0, seed=1)
    assert detector.asked == [["cat", "shadow"]]
    assert np.array_equal(result.mask, _box(60, 10, 80, 30) | _box(60, 31, 90, 38))
    assert result.recipe["with_shadow"] is True and result.recipe["find"] == ["the right cat"]
    assert result.recipe["read"] == [{"text": "the right cat", "label": "cat", "pick": "right"}]
    assert result.segmentation.info["attached"] == {"shadow": {"found": 3, "added": [1]}}


def test_exclude_reads_phrases_too():
    pipe, detector = oracle_pipeline()
    seg = pipe.segment(IMAGE, find="cat", exclude="the right cat")
    assert np.array_equal(seg.mask, _box(10, 10, 30, 30)) and detector.asked == [["cat"]]
    assert seg.detections.labels == ("cat",) and seg.excluded.labels == ("cat",)
    # Excluding what is found, with no words of its own, takes nothing back (as before the grammar).
    assert np.array_equal(pipe.segment(IMAGE, find="cat", exclude="cat").mask, CATS)


def test_partial_finds_go_on_unless_all_are_required():
    pipe, _ = oracle_pipeline()
    seg = pipe.segment(IMAGE, find="cat. rocket")
    assert np.array_equal(seg.mask, CATS) and seg.info["missing"] == ["rocket"]
    with pytest.raises(NothingFoundError) as info:
        pipe.segment(IMAGE, find="cat. rocket", require="all")
    assert info.value.labels == ["rocket"] and str(info.value).startswith("nothing found for 'rocket'")
    with pytest.raises(NothingFoundError, match="^nothing found for 'rocket', 'the moons';"):
        pipe.segment(IMAGE, find="rocket. the moons")  # nothing at all: exit 3
    seg = pipe.segment(IMAGE, find="rocket", box="0,0,5,5")  # a box is something
    assert seg.info["missing"] == ["rocket"] and seg.mask.sum() == 25
    result = pipe.remove(IMAGE, find="cat. rocket", seed=1)
    assert result.recipe["missing"] == ["rocket"]


def test_asking_for_more_than_was_found_is_one_clear_line():
    pipe, _ = oracle_pipeline()
    with pytest.raises(NothingFoundError) as info:
        pipe.segment(IMAGE, find="the third cat from the left")
    assert str(info.value) == "asked for the third cat from the left, found 2 cats" and info.value.labels == ["cat"]
    with pytest.raises(NothingFoundError, match="^asked for the second from the right, found 1 box$"):
        pipe.segment(IMAGE, box="0,0,5,5", pick="the second from the right")


def test_a_shadow_that_is_the_whole_floor_is_left_out_and_reported():
    """A real detector may call the whole ground "shadow": a touching region that would add more
    than 4x the object's area is not added, and its box is reported."""
    scene = {"cat": [[10, 10, 30, 30]], "shadow": [[10, 30, 40, 36], [0, 31, 100, 60]]}
    pipe, _ = oracle_pipeline(scene)
    seg = pipe.segment(IMAGE, find="cat", with_shadow=True)
    assert np.array_equal(seg.mask, _box(10, 10, 30, 30) | _box(10, 30, 40, 36))
    assert seg.info["attached"] == {"shadow": {"found": 2, "added": [1], "too_large": [[0.0, 31.0, 100.0, 60.0]]}}
    note = ("left out 1 shadow region(s) touching the selection, each over 4x the object's area or half "
            "the image (the ground or the water?): 0,31,100,60")
    assert seg.info["left_out"] == [note]
    removed = pipe.remove(IMAGE, find="cat", with_shadow=True)
    assert removed.info["notes"] == [note]  # the front ends' warnings


def test_too_large_to_attach_compares_with_the_objects_it_touches_and_the_image():
    from promptpaint.pipeline.selection import too_large_to_attach

    small, big = _box(10, 10, 30, 30), _box(0, 0, 40, 50)  # 400 and 2000 of 6000 pixels
    objects = np.stack([small, _box(80, 0, 100, 10)])  # the second is far from every candidate
    assert not too_large_to_attach(_box(10, 30, 30, 50), objects, 2)  # adds 400: 1x
    assert not too_large_to_attach(_box(0, 30, 80, 50), objects, 2)  # adds exactly 1600: 4x
    assert too_large_to_attach(_box(0, 30, 81, 50), objects, 2)  # adds 1620: over 4x
    # a large object's floor: 2x its area, but over half the image
    assert too_large_to_attach(_box(0, 0, 100, 60) & ~big, big[None], 2)
    assert not too_large_to_attach(_box(40, 0, 100, 50), big[None], 2)  # 3000: exactly half


def test_pick_applies_within_each_label_and_detect_picks_the_same():
    pipe, _ = oracle_pipeline()
    seg = pipe.segment(IMAGE, find="cat. shadow", pick="left")
    assert seg.detections.labels == ("cat", "shadow")
    assert seg.detections.xyxy.tolist() == [[10, 10, 30, 30], [10, 30, 40, 36]]
    dets = pipe.detect(IMAGE, "the right cat. shadow", pick="largest")
    assert dets.xyxy.tolist() == [[60, 10, 80, 30], [60, 31, 90, 38]]
    assert dets.info["read"][0] == {"text": "the right cat", "label": "cat", "pick": "right"}
    assert pipe.detect(IMAGE, "cat. rocket").info["missing"] == ["rocket"]


def test_detect_applies_require_when_given():
    pipe, _ = oracle_pipeline()
    assert len(pipe.detect(IMAGE, "rocket")) == 0  # not given: an answer, possibly empty
    assert len(pipe.detect(IMAGE, "cat. rocket", require="any")) == 2
    with pytest.raises(NothingFoundError) as info:
        pipe.detect(IMAGE, "rocket", require="any")
    assert info.value.labels == ["rocket"]
    with pytest.raises(NothingFoundError, match="rocket"):
        pipe.detect(IMAGE, "cat. rocket", require="all")
    with pytest.raises(InvalidOptionError):
        pipe.detect(IMAGE, "cat", require="most")


def test_sam3_finds_shadows_in_the_same_encoding(tiny, cat_rgb):
    pipe = Pipeline(segmenter=str(tiny["sam3"]), device="cpu")
    sam3 = pipe.segmenter()
    image = cat_rgb.copy()
    image[0, 0] = (13, 13, 13)  # a fresh cache key
    before = sam3.encode_count
    asked = []
    original = sam3.detect
    sam3.detect = lambda rgb, labels, *a: asked.append(list(labels)) or original(rgb, labels, *a)
    try:
        plain = pipe.segment(image, find="cat", box_threshold=0, dilate=0)
        seg = pipe.segment(image, find="cat", box_threshold=0, dilate=0, with_shadow=True)
    finally:
        sam3.detect = original
    assert sam3.encode_count - before == 1 and asked == [["cat"], ["cat", "shadow"]]
    assert seg.info["attached"]["shadow"]["found"] > 0
    assert seg.mask[plain.mask].all() and seg.mask.sum() > plain.mask.sum()


# ------------------------------------------------------------------ boxes and points (#10 items 3, 8)

@pytest.fixture()
def sam_pipe(tiny):
    return Pipeline(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]), device="cpu")


def _spy_segment(pipe, monkeypatch) -> list[dict]:
    calls = []
    segmenter = pipe.segmenter()
    original = segmenter.segment

    def spy(image, boxes=None, points=None):
        calls.append({"boxes": None if boxes is None else np.asarray(boxes).tolist(),
                      "points": None if points is None else np.asarray(points).tolist()})
        return original(image, boxes=boxes, points=points)

    monkeypatch.setattr(segmenter, "segment", spy)
    return calls


def test_points_with_a_box_reach_the_segmenter_as_one_prompt(sam_pipe, cat_rgb, monkeypatch):
    """A negative point inside a box cuts from that box's object: one decoder call, one instance
    (it used to be a second, negative-only prompt whose arbitrary mask was added)."""
    calls = _spy_segment(sam_pipe, monkeypatch)
    seg = sam_pipe.segment(cat_rgb, box="40,30,200,180", point="100,100,0")
    assert calls == [{"boxes": [[40, 30, 200, 180]], "points": [[100, 100, 0]]}]
    assert seg.detections.labels == ("box",)
    alone = sam_pipe.segment(cat_rgb, box="40,30,200,180")
    assert (seg.mask != alone.mask).any()


def test_points_outside_every_box_are_one_more_object(sam_pipe, cat_rgb, monkeypatch):
    calls = _spy_segment(sam_pipe, monkeypatch)
    seg = sam_pipe.segment(cat_rgb, box="40,30,200,180", point=["300,200,1", "320,220,0"])
    assert len(calls) == 1 and seg.detections.labels == ("box", "point")


def test_points_join_detected_boxes_but_not_excluded_ones(sam_pipe, cat_rgb, monkeypatch):
    calls = _spy_segment(sam_pipe, monkeypatch)
    seg = sam_pipe.segment(cat_rgb, find="cat", exclude="face", point="5,5,0", box_threshold=0, text_threshold=0)
    with_points, without = calls
    assert with_points["points"] == [[5, 5, 0]] and len(with_points["boxes"]) == len(seg.detections)
    assert without["points"] is None and len(without["boxes"]) == len(seg.excluded)


@pytest.mark.parametrize("kwargs, message", [
    (dict(point=["10,10,0", "20,20,0"]), "--point: no positive point (x,y,1) and no --box or --find: nothing to select"),
    (dict(box="500,10,600,100"), "--box 500,10,600,100 lies entirely outside the 451x300 image"),
    (dict(box="-90,-50,-1,-1"), "--box -90,-50,-1,-1 lies entirely outside the 451x300 image"),
    (dict(point="460,20"), "--point 460,20 lies outside the 451x300 image"),
])
def test_prompts_that_select_nothing_are_refused_before_any_model_loads(cat_rgb, kwargs, message):
    pipe = Pipeline(segmenter="/no/such/segmenter", detector="/no/such/detector", device="cpu")
    with pytest.raises(InvalidOptionError) as caught:
        pipe.segment(cat_rgb, **kwargs)
    assert str(caught.value) == message
    with pytest.raises(InvalidOptionError):
        pipe.remove(cat_rgb, remover="telea", **kwargs)


def test_a_box_partly_outside_is_clamped_and_said_so(sam_pipe, cat_rgb):
    seg = sam_pipe.segment(cat_rgb, box="300,200,600,400")
    assert seg.info["clamped"] == ["--box 300,200,600,400 reaches outside the 451x300 image: clamped to 300,200,451,300"]
    inside = sam_pipe.segment(cat_rgb, box="300,200,451,300")
    np.testing.assert_array_equal(seg.mask, inside.mask)
    assert "clamped" not in inside.info


# ------------------------------------------------------------------ an empty selection names its cause (#10 item 8)

def _mask(shape, area=None) -> np.ndarray:
    mask = np.zeros(shape, bool)
    if area is not None:
        mask[area] = True
    return mask


@pytest.mark.parametrize("kwargs, cause", [
    (dict(min_area=5000), "the selection is empty after --min-area 5000 (every region is smaller); nothing to edit"),
    (dict(dilate=-30), "the selection is empty after --dilate -30 (eroded away); nothing to edit"),
    (dict(invert=True, fill_holes=True), "the selection is empty after --invert (the selection covered the whole image); nothing to edit"),
])
def test_an_empty_selection_names_what_emptied_it(cat_rgb, kwargs, cause):
    mask = _mask(cat_rgb.shape[:2], np.s_[100:140, 100:150]) if "invert" not in kwargs else ~_mask(cat_rgb.shape[:2])
    with pytest.raises(NothingFoundError) as caught:
        Pipeline(device="cpu").segment(cat_rgb, mask=mask, **kwargs)
    assert str(caught.value) == cause


def test_an_empty_mask_file_is_named(cat_rgb, tmp_path):
    path = tmp_path / "blank.png"
    Image.fromarray(np.zeros(cat_rgb.shape[:2], np.uint8)).save(path)
    with pytest.raises(NothingFoundError) as caught:
        Pipeline(device="cpu").segment(cat_rgb, mask=str(path))
    assert str(caught.value) == f"the mask file {str(path)!r} selects nothing (no pixel above 127)"


def test_an_exclusion_that_removes_everything_is_named(sam_pipe, cat_rgb, monkeypatch):
    """--exclude subtracting the whole selection (the excluded object covers what was found)."""
    segmenter = sam_pipe.segmenter()
    monkeypatch.setattr(segmenter, "segment", lambda image, boxes=None, points=None: (
        np.ones((len(boxes), *image.shape[:2]), bool), np.ones(len(boxes), np.float32)))
    with pytest.raises(NothingFoundError) as caught:
        sam_pipe.segment(cat_rgb, find="cat", exclude="face", box_threshold=0, text_threshold=0)
    assert str(caught.value) == "the selection is empty after --exclude face; nothing to edit"


class ScoredDetector(BoxDetector):
    """The oracle detector, scoring its boxes 0.1 rising to 0.9 in the order it lists them."""

    def detect(self, image, labels, box_threshold, text_threshold):
        found = super().detect(image, labels, box_threshold, text_threshold)
        return Detections(found.xyxy, np.linspace(0.1, 0.9, len(found)), found.labels, image_size=found.image_size)


def test_more_detections_than_the_limit_keep_the_best_scoring_and_say_so():
    """A threshold of 0 can find hundreds of boxes, each of which becomes a full-resolution mask
    (the page's slider reaches 0): Limits.max_instances bounds them, and the result says so."""
    from promptpaint.options import Limits

    cats = [[x, 5, x + 5, 10] for x in range(0, 60, 6)]  # ten cats, the last scoring best
    pipe, _ = oracle_pipeline({"cat": cats})
    detector = ScoredDetector({"cat": cats})
    pipe.detector = lambda name=None: detector
    pipe.limits = Limits(max_instances=3)
    seg = pipe.segment(IMAGE, find="cat", box_threshold=0)
    assert seg.detections.xyxy.tolist() == cats[-3:]  # the three best, in the detector's order
    note = "the detector found 10 instances at --box-threshold 0; only the 3 best-scoring are kept"
    assert seg.info["capped"] == [note + " (raise --box-threshold to find fewer)"]
    removed = pipe.remove(IMAGE, find="cat", box_threshold=0, dilate=0)
    assert removed.info["notes"] == seg.info["capped"]
    assert len(pipe.detect(IMAGE, "cat", box_threshold=0)) == 3
    assert Limits().max_instances == 100
