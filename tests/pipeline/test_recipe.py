"""Recipes: dict, JSON, YAML, files, PNG round trip, defaults and overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest

from promptpaint.core.images import save_image
from promptpaint.errors import InvalidOptionError
from promptpaint.operations.outpaint import OutpaintEdit
from promptpaint.operations.remove import RemoveEdit
from promptpaint.operations.replace import ReplaceEdit
from promptpaint.pipeline.recipe import (METADATA_KEY, Recipe, load_recipe, missing_phrases, recipe_from_image,
                                        recipe_metadata)


BOX = "10,20,30,40"


# ---------------------------------------------------------------- recipes

RECIPE = {
    "edits": [{"op": "replace", "keep": "dog", "prompt": "a beach"}, {"op": "outpaint", "aspect": "16:9"}],
    "seed": 7,
    "steps": 20,
    "device": "cpu",
}


RECIPE_DICT = {
    "device": "cpu",
    "edits": [
        {"op": "replace", "keep": ["dog"], "prompt": "a beach", "seed": 7, "steps": 20},
        {"op": "outpaint", "aspect": "16:9", "seed": 7, "steps": 20},
    ],
}


RECIPE_YAML = """
seed: 7
steps: 20
device: cpu
edits:
  - op: replace
    keep: dog
    prompt: a beach
  - {op: outpaint, aspect: "16:9"}
"""


def test_load_recipe_from_a_dict_applies_top_level_defaults_to_every_edit():
    recipe = load_recipe(RECIPE)
    assert isinstance(recipe, Recipe)
    assert [type(e) for e in recipe.edits] == [ReplaceEdit, OutpaintEdit]
    assert [(e.seed, e.steps) for e in recipe.edits] == [(7, 20), (7, 20)]
    assert recipe.pipeline == {"device": "cpu"}
    assert recipe.to_dict() == RECIPE_DICT


@pytest.mark.parametrize("source", [json.dumps(RECIPE), json.dumps(RECIPE, indent=2), RECIPE_YAML])
def test_load_recipe_from_text(source):
    assert load_recipe(source).to_dict() == RECIPE_DICT


def test_load_recipe_from_a_long_one_line_json_text():
    recipe = {"edits": [{"op": "replace", "find": "cat", "prompt": "a " + "very " * 80 + "red fox"}]}
    assert load_recipe(json.dumps(recipe)).edits[0].prompt.endswith("very red fox")


@pytest.mark.parametrize("name, text", [("r.yaml", RECIPE_YAML), ("r.yml", RECIPE_YAML), ("r.json", json.dumps(RECIPE)),
                                        ("recipe.txt", RECIPE_YAML)])
def test_load_recipe_from_a_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert load_recipe(path).to_dict() == RECIPE_DICT
    assert load_recipe(str(path)).to_dict() == RECIPE_DICT


def test_recipe_to_dict_round_trips():
    recipe = load_recipe(RECIPE)
    again = load_recipe(recipe.to_dict())
    assert again.to_dict() == recipe.to_dict()
    assert again.edits == recipe.edits
    assert load_recipe(recipe) is recipe


def test_edit_values_beat_defaults_and_overrides_beat_both():
    source = {"edits": [{"op": "remove", "box": BOX, "seed": 1}, {"op": "remove", "box": BOX}], "seed": 5, "steps": 3}
    assert [e.seed for e in load_recipe(source).edits] == [1, 5]
    overridden = load_recipe(source, overrides={"seed": 9})
    assert [(e.seed, e.steps) for e in overridden.edits] == [(9, 3), (9, 3)]
    # overriding a Recipe object makes a new one
    assert [e.seed for e in load_recipe(load_recipe(source), overrides={"seed": 11}).edits] == [11, 11]


def test_defaults_only_reach_the_edits_that_have_the_field():
    source = {"edits": [{"op": "replace", "prompt": "a beach"}, {"op": "outpaint"}, {"op": "remove", "box": BOX}],
              "keep": "dog", "aspect": "16:9", "detector": "owlv2"}
    replace, outpaint, remove = load_recipe(source).edits
    assert replace.keep == ["dog"] and "aspect" not in ReplaceEdit.model_fields
    assert outpaint.aspect == "16:9" and "keep" not in RemoveEdit.model_fields
    assert (replace.detector, outpaint.detector, remove.detector) == ("owlv2",) * 3
    # the same holds for overrides: "keep" cannot reach a remove edit
    overridden = load_recipe({"edits": [{"op": "remove", "box": BOX}]}, overrides={"keep": "cat", "steps": 4})
    assert overridden.edits[0].steps == 4


def test_what_an_entry_reports_is_read_again_on_replay():
    """An edit's recipe says how its phrases were read and which found nothing; a replay reads
    the phrases again, so those keys are no options and are not refused."""
    entry = {"op": "remove", "find": ["the left cat", "rocket"], "with_shadow": True, "seed": 3,
             "read": [{"text": "the left cat", "label": "cat", "pick": "left"},
                      {"text": "rocket", "label": "rocket", "pick": "all"}],
             "missing": ["rocket"]}
    edit = load_recipe({"edits": [entry]}).edits[0]
    assert (edit.find, edit.with_shadow, edit.seed) == (["the left cat", "rocket"], True, 3)
    assert missing_phrases(entry) == ["rocket"] and missing_phrases({"edits": [entry, {"missing": ["moon", "rocket"]}]}) == [
        "rocket", "moon"]


@pytest.mark.parametrize("source, message", [
    ({"edits": []}, "a recipe needs a non-empty 'edits' list"),
    ({"seed": 3}, "a recipe needs a non-empty 'edits' list"),
    ({"edits": {"op": "remove"}}, "a recipe needs a non-empty 'edits' list"),
    ({"edits": [{"op": "remove", "box": BOX}], "colour": 1}, "recipe: unknown top-level key 'colour'"),
    ({"edits": [{"op": "remove", "box": BOX}], "zeta": 1, "alpha": 2}, "recipe: unknown top-level key 'alpha'"),
    ({"edits": [3]}, "recipe edit 1: must be a mapping with an 'op'"),
    ({"edits": [{"op": "remove", "box": BOX}, {"op": "remove"}]},
     "recipe edit 2 (remove): remove needs --find, --box, --point or --mask"),
    ({"edits": [{"op": "blur"}]}, "recipe edit 1 (blur): op must be one of replace, remove, outpaint, cutout, got 'blur'"),
    ({"edits": [{"op": "remove", "box": BOX, "bogus": 2}]}, "recipe edit 1 (remove): --bogus: unknown option"),
    ({"edits": [{"op": "remove", "box": BOX}], "steps": 0}, "recipe edit 1 (remove): --steps: Input should be"),
    ({"edits": [{"op": "remove", "mask": {"size": [4]}}]},
     'recipe edit 1 (remove): --mask: an embedded mask must be COCO RLE: {"size": [height, width], "counts": "..."}'),
    ("[1, 2]", "a recipe must be a mapping with an 'edits' list"),
    ("just words", "a recipe must be a mapping with an 'edits' list"),
    ("edits: [", "recipe is not valid YAML/JSON: "),
    ("missing.yaml", "recipe file not found: missing.yaml"),
    ("missing.json", "recipe file not found: missing.json"),
    ("missing.png", "recipe file not found: missing.png"),
])
def test_recipe_errors(source, message):
    with pytest.raises(InvalidOptionError) as error:
        load_recipe(source)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_recipe_round_trips_through_a_png(tmp_path):
    recipe = load_recipe(RECIPE).to_dict()
    metadata = recipe_metadata(recipe)
    assert list(metadata) == [METADATA_KEY]
    path = save_image(tmp_path / "out.png", np.zeros((8, 12, 3), np.uint8), metadata=metadata)
    embedded = recipe_from_image(path)
    from promptpaint import __version__

    assert embedded["versions"]["promptpaint"] == __version__
    assert {k: v for k, v in embedded.items() if k != "versions"} == recipe
    # a PNG made by promptpaint is itself a recipe
    assert load_recipe(path).to_dict() == RECIPE_DICT
    assert load_recipe(str(path), overrides={"seed": 8}).edits[0].seed == 8


def test_png_without_a_recipe(tmp_path):
    path = save_image(tmp_path / "plain.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InvalidOptionError, match="holds no promptpaint recipe"):
        recipe_from_image(path)
    with pytest.raises(InvalidOptionError, match="holds no promptpaint recipe"):
        load_recipe(path)


def test_seamless_options_are_recipe_keys_and_defaults():
    source = {"prefill": "telea", "no_color_match": True,
              "edits": [{"op": "outpaint", "aspect": "16:9"},
                        {"op": "replace", "box": BOX, "prompt": "x", "prefill": "none", "refine_strength": 0.3,
                         "no_refine": True}]}
    outpaint, replace = load_recipe(source).edits
    assert (outpaint.prefill, outpaint.no_color_match, outpaint.no_refine) == ("telea", True, False)
    assert (replace.prefill, replace.refine_strength, replace.no_refine) == ("none", 0.3, True)
    assert load_recipe(load_recipe(source).to_dict()).edits == [outpaint, replace]
    with pytest.raises(InvalidOptionError, match="--prefill"):
        load_recipe({"edits": [{"op": "outpaint", "aspect": "16:9", "prefill": "mirror"}]})
