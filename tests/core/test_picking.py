"""Picking among one label's instances by geometry, with hand-made detections and exact picks."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.core.phrases import Pick, read_phrase, read_phrases, read_pick
from promptpaint.core.picking import pick_instances, pick_phrases, ranking
from promptpaint.core.types import Detections
from promptpaint.errors import InvalidOptionError, NothingFoundError


def _dogs() -> Detections:
    """Four dogs in a 320x200 image (centre 160, 100).

    ===  ===================  ======  ======  ======  =====  ====================
    dog  box                  centre x  centre y  area  score  from image centre
    ===  ===================  ======  ======  ======  =====  ====================
    0    100, 40, 140, 80     120     60      1600    0.9    56.6
    1    10, 50, 50, 90       30      70      1600    0.5    133.4
    2    200, 0, 300, 100     250     50      10000   0.7    103.1
    3    150, 150, 170, 170   160     160     400     0.6    60.0
    ===  ===================  ======  ======  ======  =====  ====================
    """
    boxes = [[100, 40, 140, 80], [10, 50, 50, 90], [200, 0, 300, 100], [150, 150, 170, 170]]
    return Detections(boxes, [0.9, 0.5, 0.7, 0.6], ["dog"] * 4, image_size=(320, 200))


@pytest.mark.parametrize("order, expected", [
    ("left", [1, 0, 3, 2]),
    ("right", [2, 3, 0, 1]),
    ("top", [2, 0, 1, 3]),
    ("bottom", [3, 1, 0, 2]),
    ("largest", [2, 0, 1, 3]),   # 0 and 1 tie on area: the higher score (0) first
    ("smallest", [3, 0, 1, 2]),
    ("center", [0, 3, 2, 1]),
    # Centres spread more along x (30..250) than y: the median x is 140; 0 and 3 tie at 20 px
    # (score 0.9 before 0.6), 1 and 2 at 110 px (0.7 before 0.5).
    ("middle", [0, 3, 2, 1]),
    ("score", [0, 2, 3, 1]),
])
def test_ranking(order, expected):
    assert ranking(_dogs(), order).tolist() == expected


@pytest.mark.parametrize("text, expected", [
    ("the left dog", [1]),
    ("the dog on the left", [1]),
    ("the leftmost dog", [1]),
    ("the rightmost dog", [2]),
    ("the top dog", [2]),
    ("the bottom dog", [3]),
    ("the largest dog", [2]),
    ("the biggest dog", [2]),
    ("the smallest dog", [3]),
    ("the dog in the center", [0]),
    ("the dog in the middle", [0]),
    ("the second dog from the right", [3]),
    ("the third dog from the left", [3]),
    ("the second largest dog", [0]),
    ("the two largest dogs", [0, 2]),
    ("the two leftmost dogs", [0, 1]),
    ("the three smallest dogs", [0, 1, 3]),
    ("two dogs", [0, 2]),        # the two best scores
    ("the second dog", [2]),     # the second best score
    ("all dogs", [0, 1, 2, 3]),
    ("dogs", [0, 1, 2, 3]),
    ("the dog", [0, 1, 2, 3]),   # no modifier: every instance, as before the grammar
])
def test_phrase_picks(text, expected):
    phrase = read_phrase(text)
    assert phrase.label == "dog"
    assert pick_instances(_dogs(), phrase.pick, what="dog").tolist() == expected


@pytest.mark.parametrize("words, expected", [
    ("left", [1]), ("right", [2]), ("top", [2]), ("bottom", [3]), ("center", [0]), ("middle", [0]),
    ("largest", [2]), ("smallest", [3]), ("top-2", [0, 2]), ("top-9", [0, 1, 2, 3]),
    ("0", [0]), ("0,2", [0, 3]), ("-1", [1]), ("all", [0, 1, 2, 3]), ("the second from the right", [3]),
])
def test_pick_words_pick(words, expected):
    assert pick_instances(_dogs(), read_pick(words), what="dog").tolist() == expected


def test_ties_go_to_the_higher_score_then_the_earlier_instance():
    same_box = [[10, 10, 20, 20]] * 3
    dets = Detections(same_box, [0.4, 0.8, 0.8], ["cup"] * 3, image_size=(100, 100))
    for order in ("left", "right", "top", "bottom", "largest", "smallest", "center", "middle", "score"):
        assert ranking(dets, order).tolist() == [1, 2, 0], order
    assert pick_instances(dets, Pick("left"), what="cup").tolist() == [1]
    assert pick_instances(dets, Pick("right", rank=2), what="cup").tolist() == [2]


def test_middle_of_a_column_uses_y():
    boxes = [[0, 0, 10, 10], [2, 90, 12, 100], [1, 40, 11, 50]]  # stacked: y spreads more than x
    dets = Detections(boxes, [0.5, 0.5, 0.5], ["cup"] * 3, image_size=(20, 100))
    assert pick_instances(dets, read_pick("middle")).tolist() == [2]


def test_an_even_count_has_two_middles_and_the_score_decides():
    boxes = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]
    dets = Detections(boxes, [0.9, 0.3, 0.6, 0.9], ["cup"] * 4, image_size=(70, 10))
    assert pick_instances(dets, Pick("middle")).tolist() == [2]


def test_area_is_the_boxes_even_once_segmented():
    masks = np.zeros((2, 10, 10), bool)
    masks[0, :2, :2] = True   # a big box around a small mask
    masks[1, :3, :3] = True
    dets = Detections([[0, 0, 10, 10], [0, 0, 3, 3]], [0.5, 0.5], ["cat", "cat"], masks, (10, 10))
    assert pick_instances(dets, Pick("largest")).tolist() == [0]
    assert pick_instances(dets.with_masks(None), Pick("largest")).tolist() == [0]


@pytest.mark.parametrize("text, message", [
    ("the second dog from the right", "asked for the second dog from the right, found 1 dog"),
    ("the two largest dogs", "asked for the two largest dogs, found 1 dog"),
    ("two dogs", "asked for two dogs, found 1 dog"),
])
def test_too_few_instances_is_one_clear_line(text, message):
    one_dog = _dogs()[[0]]
    with pytest.raises(NothingFoundError) as info:
        pick_instances(one_dog, read_phrase(text).pick, what="dog", asked=text)
    assert str(info.value) == message
    assert info.value.labels == ["dog"]


def test_too_few_in_words_when_the_user_gave_none():
    with pytest.raises(NothingFoundError, match="^asked for the second from the right, found 1 dog$"):
        pick_instances(_dogs()[[0]], read_pick("the second from the right"), what="dog")
    with pytest.raises(NothingFoundError, match="^asked for the five smallest, found 4 people$"):
        pick_instances(_dogs(), read_pick("5 smallest"), what="person")


def test_top_k_and_indices_keep_their_old_rules():
    # top-K keeps up to K; an index out of range is a bad option, as before.
    assert pick_instances(_dogs(), read_pick("top-5")).tolist() == [0, 1, 2, 3]
    with pytest.raises(InvalidOptionError, match=r"^--pick: instance index 4 out of range: 4 found$"):
        pick_instances(_dogs(), read_pick("0,4"))


def test_nothing_found_picks_nothing():
    empty = Detections.empty((10, 10))
    for words in ("left", "the second from the right", "0", "all", "top-2"):
        assert pick_instances(empty, read_pick(words)).tolist() == []


def test_center_needs_the_image_size():
    dets = Detections([[0, 0, 1, 1]], [1.0], ["a"])
    with pytest.raises(ValueError, match="image_size"):
        pick_instances(dets, Pick("center"))


def _dogs_and_cats() -> Detections:
    """The four dogs, then two cats: cat 4 at centre x 50, cat 5 at centre x 20 (indices 4, 5)."""
    cats = Detections([[40, 0, 60, 20], [10, 0, 30, 20]], [0.8, 0.4], ["cat", "cat"], image_size=(320, 200))
    return Detections.concat([_dogs(), cats])


@pytest.mark.parametrize("find, pick, kept, missing", [
    (["the left dog"], "all", [1], []),
    (["the left dog", "the left cat"], "all", [1, 5], []),
    (["dog", "cat"], "left", [1, 5], []),                  # --pick applies within each label
    (["the largest dog", "cat"], "left", [2, 5], []),     # a phrase's own words win over --pick
    (["the left dog", "the right dog"], "all", [1, 2], []),
    (["dog", "the left dog"], "all", [0, 1, 2, 3], []),
    (["cat", "rocket"], "all", [4, 5], ["rocket"]),
    (["the rockets", "the left cat"], "all", [5], ["the rockets"]),
    (["rocket", "moon"], "left", [], ["rocket", "moon"]),
])
def test_pick_phrases(find, pick, kept, missing):
    indices, not_found = pick_phrases(_dogs_and_cats(), read_phrases(find), read_pick(pick))
    assert indices.tolist() == kept
    assert not_found == missing


@pytest.mark.parametrize("find, pick, message", [
    (["cat", "the third cat from the left"], "all", "asked for the third cat from the left, found 2 cats"),
    (["cat"], "the third from the left", "asked for the third from the left, found 2 cats"),
])
def test_pick_phrases_too_few_is_an_error(find, pick, message):
    with pytest.raises(NothingFoundError) as info:
        pick_phrases(_dogs_and_cats(), read_phrases(find), read_pick(pick))
    assert str(info.value) == message and info.value.labels == ["cat"]
