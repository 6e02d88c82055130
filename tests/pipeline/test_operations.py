"""The operations registry (``promptpaint.operations``): discovery, dispatch by name from the
Pipeline and from recipes, and what each built-in operation records in its recipe: the values it
resolved (dilate, feather, steps, guidance, strength, thresholds) and only the settings it used."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint import operations
from promptpaint.core import rle
from promptpaint.errors import InvalidOptionError
from promptpaint.operations.outpaint import OutpaintEdit
from promptpaint.operations.remove import RemoveEdit
from promptpaint.operations.replace import ReplaceEdit
from promptpaint.pipeline.pipeline import Pipeline
from promptpaint.pipeline.recipe import load_recipe


def hole(shape, box=(100, 60, 180, 140)) -> np.ndarray:
    x0, y0, x1, y1 = box
    mask = np.zeros(shape, bool)
    mask[y0:y1, x0:x1] = True
    return mask


# ---------------------------------------------------------------- the registry
def test_registry_finds_the_built_in_operations():
    assert operations.names()[:3] == ["replace", "remove", "outpaint"]  # the built-in ones first, then A-Z
    replace, remove, outpaint = operations.all_operations()[:3]
    assert (replace.options, remove.options, outpaint.options) == (ReplaceEdit, RemoveEdit, OutpaintEdit)
    assert (replace.generator, remove.generator, outpaint.generator) == ("inpainter", "remover", "inpainter")
    assert (replace.takes_selection, remove.takes_selection, outpaint.takes_selection) == (True, True, False)
    assert outpaint.model_roles() == ("inpainter", "remover")  # the remover pre-fills (--prefill lama)
    assert remove.summary().startswith("Erase what is selected")


def test_an_unknown_operation_is_one_line():
    choices = ", ".join(operations.names())
    with pytest.raises(InvalidOptionError, match=rf"^row 2: op must be one of {choices}, got 'blur'$"):
        operations.get("blur", where="row 2: ")


def test_every_operation_is_a_pipeline_method():
    pipe = Pipeline(device="cpu")
    for name in operations.names():
        assert callable(getattr(pipe, name)) and name in dir(pipe)
    with pytest.raises(AttributeError):
        pipe.no_such_operation  # noqa: B018


def test_a_new_operation_is_dispatched_by_name_everywhere(blackout_operation, cat_rgb, tmp_path):
    """One module's worth of code (the test's operation) is a Pipeline method, an ``edit`` op and a
    recipe op, with no list to edit."""
    from PIL import Image

    assert "blackout" in operations.names() and "level" in operations.option_fields()
    pipe = Pipeline(detector="/no/such", segmenter="/no/such", inpainter="/no/such", device="cpu")
    mask = hole(cat_rgb.shape[:2])
    result = pipe.blackout(cat_rgb, mask=mask, level=7, seed=1)
    assert np.array_equal((result.image != cat_rgb).any(axis=-1), mask & (cat_rgb != 7).any(axis=-1))
    assert (result.image[mask] == 7).all()
    assert result.recipe == {"op": "blackout", "level": 7, "dilate": 0, "seed": 1, "mask": rle.encode(mask)}
    as_dict = pipe.edit(cat_rgb, {"op": "blackout", "level": 7, "seed": 1}, mask=mask)
    assert np.array_equal(as_dict.image, result.image)
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "hole.png")
    recipe = load_recipe({"edits": [{"op": "blackout", "level": 9, "mask": str(tmp_path / "hole.png")}]})
    assert type(recipe.edits[0]) is blackout_operation.options
    assert (pipe.run(cat_rgb, recipe).image[mask] == 9).all()


# ---------------------------------------------------------------- recipes record what was used
def test_replace_records_resolved_values_and_the_models_used(tiny_pipeline, cat_rgb):
    result = tiny_pipeline.replace(cat_rgb, box="100,60,180,140", prompt="a ball", steps=2, seed=3)
    recipe = result.recipe
    assert (recipe["dilate"], recipe["feather"]) == (4, 6)  # the operation's defaults, resolved
    assert (recipe["steps"], recipe["guidance"], recipe["strength"]) == (2, 7.5, 1.0)  # the model's
    assert recipe["inpainter"] == str(tiny_pipeline.models.inpainter)
    assert recipe["segmenter"] == str(tiny_pipeline.models.segmenter)
    assert "detector" not in recipe and "box_threshold" not in recipe  # boxes need no detector
    assert "remover" not in recipe


def test_keep_records_its_own_defaults(tiny_pipeline, cat_rgb):
    result = tiny_pipeline.replace(cat_rgb, keep="cat", prompt="a beach", steps=1, seed=3, box_threshold=0,
                                   text_threshold=0)
    recipe = result.recipe
    assert (recipe["dilate"], recipe["feather"]) == (0, 3)
    assert recipe["detector"] == str(tiny_pipeline.models.detector)
    assert (recipe["box_threshold"], recipe["text_threshold"]) == (0, 0)


def test_an_explicit_dilate_0_is_recorded_and_replays_exactly(tiny_pipeline, cat_rgb, tmp_path):
    """#10 item 7: `--dilate 0` was dropped from the recipe, so every replay grew the mask by 4 px."""
    from PIL import Image

    mask = hole(cat_rgb.shape[:2])
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "hole.png")
    first = tiny_pipeline.edit(cat_rgb, {"op": "replace", "mask": str(tmp_path / "hole.png"), "prompt": "a ball",
                                         "steps": 1, "seed": 5, "dilate": 0, "feather": 0})
    assert (first.recipe["dilate"], first.recipe["feather"]) == (0, 0)
    again = tiny_pipeline.run(cat_rgb, {"edits": [first.recipe]})
    assert np.array_equal(again.mask, first.mask) and np.array_equal(again.image, first.image)
    assert np.array_equal(first.mask, mask)


@pytest.mark.parametrize("remover", ["lama", "telea"])
def test_removers_record_no_steps_guidance_or_detector(tiny, cat_rgb, remover):
    """#10 item 7: a LaMa or Telea removal records no setting it never used."""
    pipe = Pipeline(remover=str(tiny["lama"]) if remover == "lama" else "telea", device="cpu")
    result = pipe.remove(cat_rgb, mask=hole(cat_rgb.shape[:2]), steps=30, guidance=2, seed=1)
    recipe = result.recipe
    assert not {"steps", "guidance", "strength", "detector", "segmenter", "inpainter"} & set(recipe)
    assert (recipe["dilate"], recipe["feather"], recipe["seed"]) == (8, 6, 1)
    assert recipe["remover"] == ("opencv:telea" if remover == "telea" else str(tiny["lama"]))


def test_outpaint_records_its_feather_and_no_selection(tiny, cat_rgb):
    result = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu").outpaint(
        cat_rgb, expand="0,0,40,0", overlap=3, steps=1, seed=2, prefill="none")
    recipe = result.recipe
    assert recipe["feather"] == 3 and "dilate" not in recipe
    assert not {"detector", "segmenter", "box_threshold"} & set(recipe)
    assert recipe["steps"] == 1 and recipe["strength"] == 1.0


def test_a_user_given_model_name_is_recorded_as_given(tiny, cat_rgb):
    pipe = Pipeline(device="cpu")
    result = pipe.remove(cat_rgb, mask=hole(cat_rgb.shape[:2]), remover="telea", seed=1)
    assert result.recipe["remover"] == "telea"


# ---------------------------------------------------------------- a selection covering the whole image (#10 item 8)
def test_a_removal_of_the_whole_image_fails_clearly(cat_rgb):
    everything = np.ones(cat_rgb.shape[:2], bool)
    with pytest.raises(InvalidOptionError) as caught:
        Pipeline(remover="telea", device="cpu").remove(cat_rgb, mask=everything, seed=0)
    assert str(caught.value).startswith("the selection covers the whole image: a removal has nothing left to fill")


def test_a_replace_of_the_whole_image_warns(tiny_pipeline, cat_rgb):
    everything = np.ones(cat_rgb.shape[:2], bool)
    result = tiny_pipeline.replace(cat_rgb, mask=everything, prompt="a beach", steps=1, seed=0)
    assert result.info["notes"] == ["the edit covers the whole image: nothing of the original is kept"]
    partial = tiny_pipeline.replace(cat_rgb, mask=hole(cat_rgb.shape[:2]), prompt="a beach", steps=1, seed=0)
    assert "notes" not in partial.info


def test_a_clamped_box_is_noted_in_the_edits_result(tiny, cat_rgb):
    pipe = Pipeline(segmenter=str(tiny["sam"]), remover="telea", device="cpu")
    result = pipe.remove(cat_rgb, box="400,250,500,330", dilate=0, seed=0)
    assert result.info["notes"] == ["--box 400,250,500,330 reaches outside the 451x300 image: clamped to 400,250,451,300"]
    assert result.recipe["box"] == [[400, 250, 500, 330]]  # the recipe keeps what was given: replays clamp again
