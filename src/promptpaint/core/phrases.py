"""Reading a ``--find`` phrase into what to ask the detector and which instances to keep.

A small, documented grammar (pure code, no language model; README "Saying which one")::

    phrase   = [all-words] [article] modifier* noun-phrase [locative]
    modifier = ordinal ("second", "2nd") | count ("two", "2") | order word ("left", "largest")
    locative = ("on" | "to" | "at" | "in" | "from") ["the"] ["far" | "very"] direction ["of the picture"]

- The modifiers come before the noun ("the left red car", not "the red left car"); one locative may
  close the phrase ("the dog on the left", "the second cat from the right").
- Every other word stays in the label: "the red car" asks the detector for "red car".
- A direction word ("left", "top", "middle", "center") is a modifier only when a word follows it,
  so "the left shoe" is the shoe on the left of the picture and a lone "top" is a noun (a top).
  Quote words to send them to the detector as they are: ``the largest "top hat"``.
- The head noun (the last word before "of", "with", "on"...) is made singular ("cats" -> "cat",
  "people" -> "person"); a plural with no number keeps every instance ("cats", "all cats"); with an
  order word it must say how many ("the two largest cats").
- "one"/"ones" at the end name no object ("the top one", "the smallest"): that reading has no label
  and serves as a ``--pick`` applied to a label's instances.

:func:`read_phrase` reads a whole phrase, :func:`read_pick` the words ``--pick`` accepts (the same
modifiers without a noun, plus ``top-K`` (the K best scores) and score indices ``0,2``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from promptpaint.errors import InvalidOptionError

Order = Literal["all", "score", "index", "left", "right", "top", "bottom", "middle", "center", "largest", "smallest"]

#: Orders that rank instances by box geometry (the others keep all, or rank by detector score).
GEOMETRIC = ("left", "right", "top", "bottom", "middle", "center", "largest", "smallest")


@dataclass(frozen=True)
class Pick:
    """Which of one label's instances to keep.

    Instances are ranked by ``order`` (ties: higher score first, then earlier instance) and
    ``count`` of them are kept from position ``rank`` (1 = the first): "the second from the right"
    is ``Pick("right", rank=2)``, "the two largest" ``Pick("largest", count=2)``. ``"all"`` keeps
    every instance; ``"index"`` keeps ``indices`` counted in score order (0 = best, -1 = worst).
    ``at_most``: fewer instances than asked is fine (``top-K``); otherwise it is an error.
    """

    order: Order = "all"
    rank: int = 1
    count: int = 1
    indices: tuple[int, ...] = ()
    at_most: bool = False

    def __post_init__(self) -> None:
        if self.rank < 1 or self.count < 1:
            raise ValueError(f"Pick: rank and count start at 1, got rank={self.rank} count={self.count}")
        if (self.order == "index") != bool(self.indices):
            raise ValueError("Pick: indices go with order 'index', and only there")

    @property
    def words(self) -> str:
        """The canonical ``--pick`` words for this pick; :func:`read_pick` reads them back."""
        if self.order == "all":
            return "all"
        if self.order == "index":
            return ",".join(str(i) for i in self.indices)
        if self.order == "score" and self.at_most:
            return f"top-{self.count}"
        parts = [_ordinal(self.rank)] if self.rank > 1 else []
        parts += [str(self.count)] if self.count > 1 else []
        return " ".join(parts + ["best" if self.order == "score" else self.order])

    def describe(self) -> str:
        """In words, for messages: "the second from the right", "the two largest"."""
        if self.order == "all":
            return "all"
        if self.order == "index":
            return "instance " + ", ".join(str(i) for i in self.indices) + " in score order"
        count = _NUMBER_NAMES.get(self.count, str(self.count)) if self.count > 1 else ""
        nth = _ORDINAL_NAMES.get(self.rank, _ordinal(self.rank)) if self.rank > 1 else ""
        if self.order in ("largest", "smallest"):
            return " ".join(w for w in ("the", nth, count, self.order) if w)
        if self.order == "score":
            return " ".join(w for w in ("the", nth, count, "best-scoring") if w)
        place = {"center": "the center", "middle": "the middle"}.get(self.order, f"the {self.order}")
        how = "nearest" if self.order in ("center", "middle") else "from"
        if not nth and not count:
            return {"left": "the leftmost", "right": "the rightmost", "top": "the topmost",
                    "bottom": "the bottommost", "middle": "the middle one"}.get(self.order, f"the one nearest {place}")
        return " ".join(w for w in ("the", nth, count, how, place) if w)


@dataclass(frozen=True)
class Phrase:
    """One ``--find`` phrase as read: ``text`` as written, ``label`` what the detector is asked
    (None when the phrase names no object), ``pick`` which of that label's instances to keep."""

    text: str
    label: str | None
    pick: Pick = field(default_factory=Pick)

    def to_json(self) -> dict[str, Any]:
        """``{"text": "the left dog", "label": "dog", "pick": "left"}``."""
        return {"text": self.text, "label": self.label, "pick": self.pick.words}


# ---------------------------------------------------------------- vocabulary

_ARTICLES = {"the", "a", "an"}
_ALL = {"all", "every", "each", "both"}
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
            "nine": 9, "ten": 10}
_NUMBER_NAMES = {n: w for w, n in _NUMBERS.items()}
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
             "eighth": 8, "ninth": 9, "tenth": 10}
_ORDINAL_NAMES = {n: w for w, n in _ORDINALS.items()}
#: Positive direction words: modifiers only before another word ("the left dog"; a lone "top" is a noun).
_DIRECTIONS = {"left": "left", "right": "right", "top": "top", "bottom": "bottom", "middle": "middle",
               "center": "center", "centre": "center", "central": "center"}
#: Superlatives and comparatives: always modifiers ("the smallest").
_SUPERLATIVES = {
    **{w: "left" for w in ("leftmost", "left-most")},
    **{w: "right" for w in ("rightmost", "right-most")},
    **{w: "top" for w in ("topmost", "top-most", "uppermost", "highest")},
    **{w: "bottom" for w in ("bottommost", "bottom-most", "lowermost", "lowest")},
    **{w: "middle" for w in ("middlemost",)},
    **{w: "center" for w in ("centermost", "centremost")},
    **{w: "largest" for w in ("largest", "biggest", "larger", "bigger")},
    **{w: "smallest" for w in ("smallest", "tiniest", "smaller", "littlest")},
    "best": "score",
}
_PRONOUNS = {"one", "ones"}
_LOCATIVE_PREPOSITIONS = {"on", "to", "at", "in", "from", "toward", "towards"}
_LOCATIVE_DIRECTIONS = {"left", "right", "top", "bottom", "middle", "center", "centre"}
_PICTURE = {"picture", "image", "photo", "photograph", "frame", "scene"}
#: Words after which the noun phrase's head is complete ("cups of coffee": the head is "cups").
_HEAD_ENDS = {"of", "with", "in", "on", "at", "near", "behind", "under", "over", "by", "from", "holding",
              "wearing", "next", "beside", "inside", "above", "below", "without", "and"}

# ---------------------------------------------------------------- plurals

_IRREGULAR = {"people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse",
              "geese": "goose", "feet": "foot", "teeth": "tooth", "oxen": "ox", "knives": "knife",
              "wives": "wife", "leaves": "leaf", "wolves": "wolf", "shelves": "shelf", "loaves": "loaf",
              "halves": "half", "calves": "calf", "scarves": "scarf", "lives": "life", "thieves": "thief",
              "elves": "elf", "cacti": "cactus", "fungi": "fungus", "buses": "bus", "gases": "gas",
              "lenses": "lens", "policemen": "policeman",
              "firemen": "fireman", "fishermen": "fisherman", "businessmen": "businessman"}
_SINGULAR_TO_IRREGULAR = {v: k for k, v in _IRREGULAR.items()}
#: Words that end like plurals but name one thing (or are the same in both numbers).
_NOT_PLURAL = {"glasses", "sunglasses", "eyeglasses", "scissors", "pants", "trousers", "jeans", "shorts",
               "tights", "leggings", "pajamas", "pyjamas", "goggles", "binoculars", "headphones",
               "earphones", "pliers", "tongs", "clothes", "stairs", "overalls", "sheep", "fish", "deer",
               "series", "species", "news", "aircraft", "chess", "tennis", "physics", "mathematics",
               "kudos", "chaos", "cosmos", "canvas", "atlas", "christmas", "gas", "lens", "bias"}
#: Singulars ending in -ie (their plural -ies is not -y + s).
_IE_WORDS = {"cookie", "pie", "tie", "movie", "zombie", "brownie", "selfie", "hoodie", "beanie", "smoothie",
             "rookie", "calorie", "goalie", "magpie", "bootie", "genie", "collie", "budgie", "birdie",
             "veggie", "lie", "die", "sweetie", "hippie", "pixie", "eyrie"}
#: Singulars ending in -o whose plural is -oes; and in -che whose plural is -ches.
_OES_WORDS = {"tomato", "potato", "hero", "mango", "volcano", "mosquito", "domino", "buffalo", "torpedo", "echo"}
_CHE_WORDS = {"moustache", "mustache", "niche", "cache", "avalanche", "headache", "quiche", "cliche", "psyche"}


def singular(word: str) -> str | None:
    """The singular of an English plural noun, or None when ``word`` is not a plural.

    Rules: an irregular table (people -> person); words that only look plural (glasses, series)
    stay; -ies -> -y (or -ie: cookies); -sses/-xes/-ches/-shes/-oes drop -es (with tables for
    mustaches, shoes); -ss/-us/-is endings are singular; otherwise a final -s is dropped."""
    lower = word.lower()
    if lower in _IRREGULAR:
        return _same_case(_IRREGULAR[lower], word)
    if lower in _NOT_PLURAL or len(lower) < 3 or not lower.endswith("s") or lower.endswith(("ss", "us", "is")):
        return None
    if lower.endswith("ies") and len(lower) > 4:
        return word[:-1] if lower[:-1] in _IE_WORDS else word[:-3] + ("Y" if word[-1].isupper() else "y")
    if lower.endswith("ches"):
        return word[:-1] if lower[:-1] in _CHE_WORDS else word[:-2]
    if lower.endswith(("sses", "xes", "shes")):
        return word[:-2]
    if lower.endswith("oes"):
        return word[:-2] if lower[:-2] in _OES_WORDS else word[:-1]
    return word[:-1]


def plural(label: str, n: int = 2) -> str:
    """``label`` as it reads after the number ``n``: "1 dog", "2 dogs", "2 people", "3 boxes",
    "2 cups of coffee" (the head noun takes the plural)."""
    words = label.split()
    if n == 1 or not words:
        return label
    head = next((i - 1 for i, w in enumerate(words) if i > 0 and w.lower() in _HEAD_ENDS), len(words) - 1)
    words[head] = _plural_word(words[head])
    return " ".join(words)


def _plural_word(word: str) -> str:
    lower = word.lower()
    if lower in _SINGULAR_TO_IRREGULAR:
        return _same_case(_SINGULAR_TO_IRREGULAR[lower], word)
    if lower in _NOT_PLURAL:
        return word
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return word[:-1] + "ies"
    if lower.endswith(("s", "x", "z", "ch", "sh")) or lower in _OES_WORDS:
        return word + "es"
    return word + "s"


def _same_case(replacement: str, original: str) -> str:
    return replacement.capitalize() if original[:1].isupper() else replacement


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ---------------------------------------------------------------- reading

_TOKEN = re.compile(r"""(?<!\S)(["'])(.+?)\1(?!\S)|\S+""")


@dataclass
class _Token:
    text: str
    literal: bool = False  # came from quotes: never a modifier, never made singular

    @property
    def word(self) -> str:
        return "" if self.literal else self.text.lower().strip(",;:!?")


def _tokens(text: str) -> list[_Token]:
    return [_Token(m.group(2), True) if m.group(1) else _Token(m.group(0)) for m in _TOKEN.finditer(text)]


def _as_number(word: str) -> int | None:
    if word.isdigit() and int(word) >= 1:
        return int(word)
    return _NUMBERS.get(word)


def _as_ordinal(word: str) -> int | None:
    match = re.fullmatch(r"(\d+)(st|nd|rd|th)", word)
    if match and int(match.group(1)) >= 1:
        return int(match.group(1))
    return _ORDINALS.get(word)


@dataclass
class _Reading:
    """What the modifiers of one phrase said, before they become a :class:`Pick`."""

    text: str
    every: bool = False
    order: str | None = None
    rank: int | None = None
    count: int | None = None

    @property
    def said_which(self) -> bool:
        return bool(self.every or self.order or self.rank or self.count)

    def set(self, what: str, value: Any) -> None:
        if getattr(self, what) not in (None, False) and getattr(self, what) != value:
            raise InvalidOptionError(f"{self.text!r} says two different {_WHAT[what]}; say one")
        setattr(self, what, value)


_WHAT = {"order": "positions or sizes", "rank": "ordinals", "count": "numbers", "every": "'all'"}


def _locative(tokens: list[_Token], reading: _Reading) -> list[_Token]:
    """Take a closing "on the left" / "from the right" / "in the center of the picture" off the end."""
    words = [t.word for t in tokens]
    end = len(words)
    if end >= 3 and words[end - 1] in _PICTURE and words[end - 2] == "the" and words[end - 3] == "of":
        end -= 3
    if end >= 2 and words[end - 2:end] == ["on", "top"]:
        reading.set("order", "top")
        return tokens[:end - 2]
    if end < 2 or words[end - 1] not in _LOCATIVE_DIRECTIONS:
        return tokens
    start = end - 1
    if start > 0 and words[start - 1] in ("far", "very"):
        start -= 1
    if start > 0 and words[start - 1] == "the":
        start -= 1
    if start > 0 and words[start - 1] in _LOCATIVE_PREPOSITIONS:
        reading.set("order", _DIRECTIONS[words[end - 1]])
        return tokens[:start - 1]
    return tokens


def _modifiers(tokens: list[_Token], reading: _Reading) -> list[_Token]:
    """Take the leading "all the" / article / ordinals, numbers and order words off the front."""
    i = 0
    words = [t.word for t in tokens]
    if i < len(words) and words[i] in _ALL:
        reading.set("every", True)
        i += 1
        if i < len(words) and words[i] == "of":
            i += 1
    if i < len(words) and words[i] in _ARTICLES:
        i += 1
    while i < len(words):
        word, last = words[i], i == len(words) - 1
        if _as_ordinal(word) is not None:
            reading.set("rank", _as_ordinal(word))
        elif _as_number(word) is not None and not (last and (word in _PRONOUNS or not reading.said_which)):
            reading.set("count", _as_number(word))
        elif word in _SUPERLATIVES:
            reading.set("order", _SUPERLATIVES[word])
        elif word in _DIRECTIONS and not last:
            reading.set("order", _DIRECTIONS[word])
        else:
            break
        i += 1
    return tokens[i:]


def _noun(tokens: list[_Token]) -> tuple[str | None, bool]:
    """The label for the detector and whether its head noun was plural."""
    if not tokens or (len(tokens) == 1 and tokens[0].word in _PRONOUNS):
        return None, bool(tokens) and tokens[0].word == "ones"
    words = [t.text for t in tokens]
    head = next((i - 1 for i, t in enumerate(tokens) if i > 0 and t.word in _HEAD_ENDS), len(tokens) - 1)
    single = None if tokens[head].literal else singular(tokens[head].text.strip(",;:!?"))
    if single is not None:
        words[head] = single
    return " ".join(words).strip(",;:!? "), single is not None


def read_phrase(text: str) -> Phrase:
    """Read one phrase: "the two largest cats" -> label "cat", pick the two largest.

    Raises :class:`InvalidOptionError` (one line) for contradictions ("the left dog on the right")
    and for a plural with an order word but no number ("the largest cats")."""
    reading = _Reading(" ".join(text.split()))
    tokens = _tokens(text)
    tokens = _locative(tokens, reading)
    tokens = _modifiers(tokens, reading)
    label, is_plural = _noun(tokens)
    if label is None and not reading.said_which:  # nothing read ("a", "the one"): ask for it as written
        return Phrase(reading.text, reading.text)
    return Phrase(reading.text, label, _pick(reading, is_plural, label))


def _pick(reading: _Reading, is_plural: bool, label: str | None) -> Pick:
    if reading.every:
        if reading.order or reading.rank or reading.count:
            raise InvalidOptionError(f"{reading.text!r}: 'all' keeps every one; drop the other words or 'all'")
        return Pick()
    if reading.order is None and reading.rank is None:
        if reading.count is None:
            return Pick()  # "cats", "the cat": every instance, as without the grammar
        return Pick("score", count=reading.count)  # "two cats": the two best-scoring
    if is_plural and reading.count is None:
        example = f"'the two {reading.order or 'largest'} {plural(label or 'one')}'"
        raise InvalidOptionError(f"{reading.text!r}: say how many, e.g. {example}, or 'all'")
    return Pick(reading.order or "score", rank=reading.rank or 1, count=reading.count or 1)


def read_pick(text: str) -> Pick:
    """Read ``--pick`` words: ``all``, ``top-K`` (the K best scores, fewer is fine), score indices
    ``0,2`` (0 = best), or modifiers without a noun: ``left``, ``largest``, ``the second from the
    right``, ``two largest``, ``the top one``. Errors name no option: the caller's parser adds it."""
    words = " ".join(str(text).split()).lower()
    if not words:
        raise InvalidOptionError("empty; say all, largest, left, top-K, indices like 0,2 ...")
    if words == "all":
        return Pick()
    top = re.fullmatch(r"top-?(\d+)", words)
    if top:
        if int(top.group(1)) < 1:
            raise InvalidOptionError("top-K needs K >= 1")
        return Pick("score", count=int(top.group(1)), at_most=True)
    if re.fullmatch(r"-?\d+(\s*,\s*-?\d+)*\s*,?", words):
        indices = tuple(dict.fromkeys(int(p) for p in words.split(",") if p.strip()))
        return Pick("index", indices=indices)
    reading = _Reading(words)
    tokens = _modifiers(_locative(_tokens(words), reading), reading)
    if len(tokens) == 1 and tokens[0].word in _DIRECTIONS:
        reading.set("order", _DIRECTIONS[tokens[0].word])  # a lone "top": here, the place, not a noun
        tokens = []
    if tokens and not (len(tokens) == 1 and tokens[0].word in _PRONOUNS):
        raise InvalidOptionError(f"{text!r} is not a pick; say all, largest, left, center, "
                                 "the second from the right, top-K or indices like 0,2")
    if reading.every:
        return Pick()
    if reading.order is None and reading.rank is None and reading.count is None:
        raise InvalidOptionError(f"{text!r} says nothing about which one")
    return Pick(reading.order or "score", rank=reading.rank or 1, count=reading.count or 1)


def read_phrases(find: list[str]) -> list[Phrase]:
    """Read every phrase; one that names no object is an error (it belongs in ``--pick``)."""
    phrases = [read_phrase(text) for text in find]
    for phrase in phrases:
        if phrase.label is None:
            raise InvalidOptionError(f"{phrase.text!r} names no object; say which, e.g. "
                                     f"'the largest cup', or give it as --pick {phrase.pick.words!r}")
    return phrases


__all__ = ["Pick", "Phrase", "Order", "GEOMETRIC", "read_phrase", "read_phrases", "read_pick", "singular",
           "plural"]
