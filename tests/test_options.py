"""Option models: parse_edit / parse_options one-line errors, value syntax, env defaults."""

from __future__ import annotations


import pytest

from promptpaint.errors import InvalidOptionError
from promptpaint.operations import parse_edit
from promptpaint.operations.outpaint import OutpaintEdit
from promptpaint.operations.remove import RemoveEdit
from promptpaint.operations.replace import ReplaceEdit
from promptpaint.options import DEFAULT_MODELS, ModelOptions, SegmentOptions, parse_options


BOX = "10,20,30,40"


# ---------------------------------------------------------------- parse_edit


@pytest.mark.parametrize("values, cls", [
    ({"op": "replace", "find": "fox", "prompt": "a cat"}, ReplaceEdit),
    ({"op": "replace", "keep": "dog", "prompt": "a beach"}, ReplaceEdit),
    ({"op": "remove", "box": BOX}, RemoveEdit),
    ({"op": "outpaint", "aspect": "16:9"}, OutpaintEdit),
])
def test_parse_edit_picks_the_type_from_op(values, cls):
    edit = parse_edit(values)
    assert type(edit) is cls and edit.op == values["op"]


@pytest.mark.parametrize("value, expected", [
    ("fox", ["fox"]),
    ("fox. tree", ["fox", "tree"]),
    ("fox.tree.", ["fox", "tree"]),
    (" red car . ", ["red car"]),
    (["fox. tree", " cat ", "."], ["fox", "tree", "cat"]),
    (("a", "b"), ["a", "b"]),
    (2024, ["2024"]),
])
def test_labels_split_on_dots(value, expected):
    assert parse_edit({"op": "remove", "find": value}).find == expected
    assert parse_edit({"op": "remove", "box": BOX, "exclude": value}).exclude == expected


def test_keep_labels_split_on_dots():
    assert parse_edit({"op": "replace", "keep": "dog. person", "prompt": "a beach"}).keep == ["dog", "person"]


@pytest.mark.parametrize("value, expected", [
    ("10,20,30,40", [(10.0, 20.0, 30.0, 40.0)]),
    ("10 20 30 40", [(10.0, 20.0, 30.0, 40.0)]),
    ([10, 20, 30, 40], [(10.0, 20.0, 30.0, 40.0)]),          # one box as four numbers
    ((10, 20, 30.5, 40), [(10.0, 20.0, 30.5, 40.0)]),
    ([[1, 2, 3, 4], "5,6,7,8"], [(1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0)]),
    (["1,2,3,4", "5,6,7,8"], [(1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0)]),
])
def test_box_syntax(value, expected):
    assert parse_edit({"op": "remove", "box": value}).box == expected


@pytest.mark.parametrize("value, expected", [
    ("3,4", [(3.0, 4.0, 1)]),
    ("3,4,0", [(3.0, 4.0, 0)]),
    ([3, 4], [(3.0, 4.0, 1)]),
    ([3, 4, 0], [(3.0, 4.0, 0)]),
    ([[1, 2], "3,4,0"], [(1.0, 2.0, 1), (3.0, 4.0, 0)]),
])
def test_point_syntax(value, expected):
    assert parse_edit({"op": "remove", "point": value}).point == expected


@pytest.mark.parametrize("values, message", [
    ({"op": "paint"}, "op must be one of replace, remove, outpaint, cutout, got 'paint'"),
    ({}, "op must be one of replace, remove, outpaint, cutout, got None"),
    ({"op": "replace", "find": "fox"}, "replace needs --prompt (what to paint)"),
    ({"op": "replace", "find": "fox", "prompt": "   "}, "replace needs --prompt (what to paint)"),
    ({"op": "replace", "prompt": "x"}, "replace needs --find, --keep, --box, --point or --mask"),
    ({"op": "replace", "find": "fox", "keep": "tree", "prompt": "x"},
     "use either --find (repaint it) or --keep (repaint everything else), not both"),
    ({"op": "remove"}, "remove needs --find, --box, --point or --mask"),
    ({"op": "remove", "point": []}, "remove needs --find, --box, --point or --mask"),
    ({"op": "remove", "find": "x", "bogus": 1}, "--bogus: unknown option"),
    ({"op": "remove", "find": "x", "neg_prompt": "a"}, "--neg-prompt: unknown option"),
    ({"op": "remove", "box": "10,20,5,40"}, "--box: box '10,20,5,40' is empty: need x1 > x0 and y1 > y0"),
    ({"op": "remove", "box": "10,20,30"}, "--box: box must be four numbers x0,y0,x1,y1, got '10,20,30'"),
    ({"op": "remove", "box": 5}, "--box: box must be four numbers x0,y0,x1,y1, got 5"),
    ({"op": "remove", "point": "1,2,5"}, "--point: point must be x,y or x,y,label (label 0 or 1), got '1,2,5'"),
    ({"op": "remove", "point": 7}, "--point: point must be x,y or x,y,label (label 0 or 1), got 7"),
    ({"op": "remove", "find": "x", "pick": "dog"}, "--pick: 'dog' is not a pick; say all, largest, left, center, "
     "the second from the right, top-K or indices like 0,2"),
    ({"op": "remove", "find": "x", "pick": "top-"}, "--pick: 'top-' is not a pick"),
    ({"op": "remove", "find": "x", "pick": ","}, "--pick: ',' is not a pick"),
    ({"op": "remove", "find": "the largest cats"}, "--find: 'the largest cats': say how many, e.g. 'the two "
     "largest cats', or 'all'"),
    ({"op": "remove", "find": "the smallest"}, "--find: 'the smallest' names no object"),
    ({"op": "replace", "keep": "the left dog on the right", "prompt": "x"}, "--keep: 'the left dog on the right' "
     "says two different positions or sizes; say one"),
    ({"op": "remove", "find": "x", "require": "some"}, "--require: Input should be 'any' or 'all'"),
    ({"op": "remove", "mask": "m.png", "with_shadow": True}, "--with-shadow and --with-reflection need --find"),
    ({"op": "remove", "find": "x", "steps": 0}, "--steps: Input should be greater than or equal to 1"),
    ({"op": "remove", "find": "x", "strength": 0}, "--strength: Input should be greater than 0"),
    ({"op": "remove", "find": "x", "variants": 17}, "--variants: Input should be less than or equal to 16"),
    ({"op": "remove", "find": "x", "working_size": 32}, "--working-size: Input should be greater than or equal to 64"),
    ({"op": "remove", "find": "x", "box_threshold": 2}, "--box-threshold: Input should be less than or equal to 1"),
    ({"op": "remove", "find": "x", "min_area": -1}, "--min-area: Input should be greater than or equal to 0"),
    ({"op": "remove", "find": "x", "seed": "abc"}, "--seed: Input should be a valid integer"),
    ({"op": "remove", "find": "x", "steps": 0, "strength": 2},
     "--steps: Input should be greater than or equal to 1; --strength: Input should be less than or equal to 1"),
])
def test_parse_edit_errors_are_one_line(values, message):
    with pytest.raises(InvalidOptionError) as error:
        parse_edit(values)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("values, message", [
    ({"op": "outpaint"}, "outpaint needs exactly one of --aspect, --expand or --size"),
    ({"op": "outpaint", "aspect": ""}, "outpaint needs exactly one of --aspect, --expand or --size"),
    ({"op": "outpaint", "aspect": "16:9", "size": "800x600"}, "outpaint needs exactly one of"),
    ({"op": "outpaint", "aspect": "16:9", "expand": "10", "size": "800x600"}, "outpaint needs exactly one of"),
    ({"op": "outpaint", "aspect": "abc"}, "aspect must look like 16:9 (both sides > 0), got 'abc'"),
    ({"op": "outpaint", "expand": "-1"}, "expand must be L,T,R,B non-negative pixels"),
    ({"op": "outpaint", "size": "0x10"}, "size must look like WIDTHxHEIGHT with positive numbers, got '0x10'"),
    ({"op": "outpaint", "aspect": "16:9", "anchor": "middle"}, "anchor must be one of center, left, right, top"),
    ({"op": "outpaint", "expand": 5}, "--expand: Input should be a valid string"),
])
def test_outpaint_exactly_one_of(values, message):
    with pytest.raises(InvalidOptionError) as error:
        parse_edit(values)
    assert message in str(error.value)


@pytest.mark.parametrize("values, field, expected", [
    ({"aspect": "16:9"}, "aspect", "16:9"),
    ({"expand": "10,20,30,40"}, "expand", "10,20,30,40"),
    ({"expand": [10, 20, 30, 40]}, "expand", "10,20,30,40"),
    ({"size": [800, 600]}, "size", "800,600"),
    ({"size": "800x600", "anchor": "top-left"}, "anchor", "top-left"),
])
def test_outpaint_values(values, field, expected):
    assert getattr(parse_edit({"op": "outpaint", **values}), field) == expected


def test_where_prefixes_every_message():
    with pytest.raises(InvalidOptionError, match=r"^row 3: --steps: Input should be greater than or equal to 1$"):
        parse_edit({"op": "remove", "find": "x", "steps": 0}, where="row 3: ")
    with pytest.raises(InvalidOptionError, match=r"^row 3: op must be one of"):
        parse_edit({"op": "blur"}, where="row 3: ")


def test_parse_options_drops_none_values_and_normalises_pick():
    seg = parse_options(SegmentOptions, {"find": "a.b", "invert": True, "box": None, "pick": " TOP-2 "})
    assert seg.find == ["a", "b"] and seg.invert is True and seg.box == [] and seg.pick == "top-2"
    assert seg.has_target
    assert not parse_options(SegmentOptions, {}).has_target
    with pytest.raises(InvalidOptionError, match=r"^--prompt: unknown option$"):
        parse_options(SegmentOptions, {"find": "x", "prompt": "x"})


def test_options_reject_assignment_of_bad_values():
    edit = parse_edit({"op": "remove", "find": "x"})
    with pytest.raises(ValueError):
        edit.steps = 0


# ---------------------------------------------------------------- ModelOptions and the environment


ENV_FIELDS = ["detector", "segmenter", "inpainter", "remover", "device", "dtype"]


@pytest.fixture()
def clean_env(monkeypatch):
    for name in ENV_FIELDS:
        monkeypatch.delenv(f"PROMPTPAINT_{name.upper()}", raising=False)
    return monkeypatch


def test_model_defaults(clean_env):
    models = ModelOptions().model_dump()
    expected = {**DEFAULT_MODELS, "device": "auto", "dtype": "auto", "offload": False, "compile": False}
    assert {key: models[key] for key in expected} == expected


@pytest.mark.parametrize("field, from_env, explicit", [
    ("detector", "owlv2", "gdino-base"),
    ("segmenter", "sam2-t", "sam-b"),
    ("inpainter", "sdxl", "flux-fill"),
    ("remover", "telea", "lama"),
    ("device", "cpu", "cuda"),
    ("dtype", "float16", "bfloat16"),
])
def test_env_vars_set_model_defaults(clean_env, field, from_env, explicit):
    clean_env.setenv(f"PROMPTPAINT_{field.upper()}", from_env)
    assert getattr(ModelOptions(), field) == from_env
    assert getattr(parse_options(ModelOptions, {}), field) == from_env
    # an explicit value beats the environment
    assert getattr(parse_options(ModelOptions, {field: explicit}), field) == explicit


def test_empty_env_var_falls_back_to_the_default(clean_env):
    clean_env.setenv("PROMPTPAINT_DETECTOR", "")
    assert ModelOptions().detector == DEFAULT_MODELS["detector"]


def test_env_is_read_when_the_options_are_made(clean_env):
    clean_env.setenv("PROMPTPAINT_SEGMENTER", "sam-l")
    first = ModelOptions()
    clean_env.setenv("PROMPTPAINT_SEGMENTER", "sam-h")
    assert (first.segmenter, ModelOptions().segmenter) == ("sam-l", "sam-h")


@pytest.mark.parametrize("values, message", [
    ({"device": "tpu"}, "--device: Input should be 'auto', 'cpu', 'cuda' or 'mps'"),
    ({"dtype": "int8"}, "--dtype: Input should be"),
    ({"gpu": "0"}, "--gpu: unknown option"),
])
def test_model_options_errors(clean_env, values, message):
    with pytest.raises(InvalidOptionError) as error:
        parse_options(ModelOptions, values)
    assert message in str(error.value)
