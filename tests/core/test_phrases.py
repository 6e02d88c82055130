"""The --find grammar: every documented form, read into a label and a pick (exact expected values)."""

from __future__ import annotations

import pytest

from promptpaint.core.phrases import Phrase, Pick, plural, read_phrase, read_phrases, read_pick, singular
from promptpaint.errors import InvalidOptionError


@pytest.mark.parametrize("text, label, pick", [
    # The forms of issue 13.
    ("the left dog", "dog", Pick("left")),
    ("the dog on the left", "dog", Pick("left")),
    ("the leftmost dog", "dog", Pick("left")),
    ("the largest cup", "cup", Pick("largest")),
    ("the biggest person", "person", Pick("largest")),
    ("the smallest", None, Pick("smallest")),
    ("the second from the right", None, Pick("right", rank=2)),
    ("the two largest cats", "cat", Pick("largest", count=2)),
    ("the top one", None, Pick("top")),
    ("the bottom one", None, Pick("bottom")),
    ("the middle one", None, Pick("middle")),
    ("the cat in the center", "cat", Pick("center")),
    ("all cats", "cat", Pick()),
    # Words that are not modifiers stay in the label.
    ("red car", "red car", Pick()),
    ("the red car", "red car", Pick()),
    ("a man with the hat on the left", "man with the hat", Pick("left")),
    ("the cup of coffee on the far right of the picture", "cup of coffee", Pick("right")),
    # A direction word is a modifier only before another word; quotes keep words as they are.
    ("the left shoe", "shoe", Pick("left")),
    ("top", "top", Pick()),
    ("the bottom", "bottom", Pick()),
    ('the largest "top hat"', "top hat", Pick("largest")),
    ('"the left shoe"', "the left shoe", Pick()),
    ("'cats'", "cats", Pick()),
    # Other spellings of the same orders.
    ("the rightmost car", "car", Pick("right")),
    ("the car on the right", "car", Pick("right")),
    ("the car to the right", "car", Pick("right")),
    ("the highest bird", "bird", Pick("top")),
    ("the bird at the top", "bird", Pick("top")),
    ("the lamp on top", "lamp", Pick("top")),
    ("the lowest shelf", "shelf", Pick("bottom")),
    ("the boat at the bottom of the image", "boat", Pick("bottom")),
    ("the cat in the middle", "cat", Pick("middle")),
    ("the central cat", "cat", Pick("center")),
    ("the cat in the centre of the photo", "cat", Pick("center")),
    ("the tiniest mouse", "mouse", Pick("smallest")),
    ("the bigger dog", "dog", Pick("largest")),
    ("the best cat", "cat", Pick("score")),
    # Ordinals and counts.
    ("the second largest dog", "dog", Pick("largest", rank=2)),
    ("the 3rd cat from the left", "cat", Pick("left", rank=3)),
    ("the second cat", "cat", Pick("score", rank=2)),
    ("the top two cats", "cat", Pick("top", count=2)),
    ("the 2 smallest people", "person", Pick("smallest", count=2)),
    ("the two largest ones", None, Pick("largest", count=2)),
    ("two cats", "cat", Pick("score", count=2)),
    ("one cat", "cat", Pick("score")),
    # Plurals name the noun the detector is asked about, and keep every instance.
    ("cats", "cat", Pick()),
    ("the people", "person", Pick()),
    ("all of the boxes", "box", Pick()),
    ("every cup of coffee", "cup of coffee", Pick()),
    ("both dogs", "dog", Pick()),
    ("glasses", "glasses", Pick()),
    # A phrase the grammar reads nothing in is asked for as written; a lone number is no count.
    ("a", "a", Pick()),
    ("the one", "the one", Pick()),
    ("2024", "2024", Pick()),
    ("the top two", None, Pick("top", count=2)),
    ("the left glasses", "glasses", Pick("left")),
])
def test_read_phrase(text, label, pick):
    phrase = read_phrase(text)
    assert (phrase.label, phrase.pick) == (label, pick)
    assert phrase.text == text


def test_reading_as_json():
    assert read_phrase("the left dog").to_json() == {"text": "the left dog", "label": "dog", "pick": "left"}
    assert read_phrase("  the   dog on the  left ").to_json() == {"text": "the dog on the left", "label": "dog",
                                                                  "pick": "left"}
    assert read_phrase("the second cat from the right").to_json()["pick"] == "2nd right"
    assert read_phrase("the two largest cats").to_json()["pick"] == "2 largest"
    assert read_phrase("The Red Car").label == "Red Car"  # the label keeps the user's case


@pytest.mark.parametrize("text, message", [
    ("the left dog on the right", "'the left dog on the right' says two different positions or sizes; say one"),
    ("the largest cats", "'the largest cats': say how many, e.g. 'the two largest cats', or 'all'"),
    ("the cats on the left", "'the cats on the left': say how many, e.g. 'the two left cats', or 'all'"),
    ("all the largest cats", "'all the largest cats': 'all' keeps every one; drop the other words or 'all'"),
    ("the second third cat", "'the second third cat' says two different ordinals; say one"),
])
def test_read_phrase_errors(text, message):
    with pytest.raises(InvalidOptionError) as info:
        read_phrase(text)
    assert str(info.value) == message


def test_read_phrases_needs_an_object():
    assert read_phrases(["cat", "the left dog"]) == [Phrase("cat", "cat"), Phrase("the left dog", "dog", Pick("left"))]
    with pytest.raises(InvalidOptionError, match=r"^'the smallest' names no object; .* --pick 'smallest'$"):
        read_phrases(["cat", "the smallest"])


@pytest.mark.parametrize("text, pick", [
    ("all", Pick()),
    ("left", Pick("left")),
    ("right", Pick("right")),
    ("top", Pick("top")),
    ("bottom", Pick("bottom")),
    ("center", Pick("center")),
    ("middle", Pick("middle")),
    ("largest", Pick("largest")),
    ("smallest", Pick("smallest")),
    (" Largest ", Pick("largest")),
    ("the second from the right", Pick("right", rank=2)),
    ("2nd right", Pick("right", rank=2)),
    ("two largest", Pick("largest", count=2)),
    ("2 largest", Pick("largest", count=2)),
    ("the top one", Pick("top")),
    ("the leftmost", Pick("left")),
    ("2 best", Pick("score", count=2)),
    ("top-2", Pick("score", count=2, at_most=True)),
    ("top2", Pick("score", count=2, at_most=True)),
    ("TOP-1", Pick("score", count=1, at_most=True)),
    ("0", Pick("index", indices=(0,))),
    ("0,2", Pick("index", indices=(0, 2))),
    ("2, 0, 2", Pick("index", indices=(2, 0))),
    ("-1", Pick("index", indices=(-1,))),
])
def test_read_pick(text, pick):
    assert read_pick(text) == pick
    assert read_pick(pick.words) == pick  # the canonical words read back to the same pick


@pytest.mark.parametrize("text, message", [
    ("dog", "'dog' is not a pick"),
    ("the left dog", "'the left dog' is not a pick"),
    ("", "empty"),
    ("the", "'the' says nothing about which one"),
    ("top-0", "top-K needs K >= 1"),
])
def test_read_pick_errors(text, message):
    with pytest.raises(InvalidOptionError, match="^" + message):
        read_pick(text)


@pytest.mark.parametrize("pick, words", [
    (Pick(), "all"),
    (Pick("left"), "left"),
    (Pick("right", rank=2), "2nd right"),
    (Pick("largest", count=2), "2 largest"),
    (Pick("top", rank=3, count=2), "3rd 2 top"),
    (Pick("score"), "best"),
    (Pick("score", rank=11), "11th best"),
    (Pick("score", count=3, at_most=True), "top-3"),
    (Pick("index", indices=(0, -1)), "0,-1"),
])
def test_pick_words(pick, words):
    assert pick.words == words
    assert read_pick(words) == pick


@pytest.mark.parametrize("pick, text", [
    (Pick("right", rank=2), "the second from the right"),
    (Pick("left"), "the leftmost"),
    (Pick("largest", count=2), "the two largest"),
    (Pick("smallest", rank=3), "the third smallest"),
    (Pick("center"), "the one nearest the center"),
    (Pick("middle"), "the middle one"),
    (Pick("middle", count=2), "the two nearest the middle"),
    (Pick("score", count=2), "the two best-scoring"),
    (Pick("top", count=12), "the 12 from the top"),
])
def test_pick_describe(pick, text):
    assert pick.describe() == text


def test_pick_checks_itself():
    with pytest.raises(ValueError):
        Pick("left", rank=0)
    with pytest.raises(ValueError):
        Pick("left", indices=(1,))
    with pytest.raises(ValueError):
        Pick("index")


@pytest.mark.parametrize("word, expected", [
    ("cats", "cat"), ("dogs", "dog"), ("people", "person"), ("men", "man"), ("children", "child"),
    ("mice", "mouse"), ("knives", "knife"), ("leaves", "leaf"), ("puppies", "puppy"), ("cookies", "cookie"),
    ("pies", "pie"), ("boxes", "box"), ("benches", "bench"), ("dishes", "dish"), ("dresses", "dress"),
    ("tomatoes", "tomato"), ("shoes", "shoe"), ("horses", "horse"), ("houses", "house"), ("gloves", "glove"),
    ("mustaches", "mustache"), ("buses", "bus"), ("Cats", "Cat"), ("People", "Person"),
    ("cat", None), ("glass", None), ("bus", None), ("cactus", None), ("iris", None), ("glasses", None),
    ("scissors", None), ("sheep", None), ("fish", None), ("series", None), ("as", None), ("canvas", None),
])
def test_singular(word, expected):
    assert singular(word) == expected


@pytest.mark.parametrize("label, n, expected", [
    ("dog", 1, "dog"), ("dog", 0, "dogs"), ("dog", 2, "dogs"), ("person", 3, "people"), ("box", 2, "boxes"),
    ("puppy", 2, "puppies"), ("key", 2, "keys"), ("glasses", 2, "glasses"), ("tomato", 2, "tomatoes"),
    ("cup of coffee", 2, "cups of coffee"), ("red car", 2, "red cars"),
])
def test_plural(label, n, expected):
    assert plural(label, n) == expected
