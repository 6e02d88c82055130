"""EditJob.generate through the Pipeline: coarse to fine, colour matching and pre-fill as options
(--refine-strength, --no-refine, --no-color-match, --prefill), what the recipe records, preflight
for the pre-fill's remover, and model objects given in place of names."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.errors import ModelLoadError
from promptpaint.pipeline.pipeline import Pipeline
from promptpaint.pipeline.stitch import GENERATE, PREFILL, REFINE


class Painter:
    """A diffusion-like inpainter (the Inpainter protocol): paints ``colour`` in the mask and adds
    ``drift`` to the whole crop, as a VAE shifts colours; records every call."""

    model_id = "test:painter"
    family = "test"
    working_size = 64
    multiple = 8
    upscale = True
    min_context = 0
    scheduler, lora, has_fast_mode, shows_previews = None, None, False, False
    needs_prompt = True
    takes_negative_prompt = True
    batches = False
    default_steps = 4
    default_guidance = 1.0
    default_strength = 1.0

    def __init__(self, colour=200, drift=0):
        self.colour, self.drift = colour, drift
        self.calls: list[dict] = []

    def inpaint(self, images, mask, *, prompt, negative_prompt, seeds, steps, guidance, strength, progress=None):
        self.calls.append({"images": [im.copy() for im in images], "mask": mask.copy(), "steps": steps,
                           "strength": strength})
        return [np.clip(np.where(mask[..., None], self.colour, im).astype(int) + self.drift, 0, 255).astype(np.uint8)
                for im in images]


def photo(h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(40, 200, (h, w, 3), dtype=np.uint8)


def hole(shape, box):
    mask = np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


# ---------------------------------------------------------------- model objects


def test_a_model_object_stands_in_for_a_name_and_is_never_looked_up(monkeypatch):
    from promptpaint.backends import registry

    def no_lookup(*args, **kwargs):
        raise AssertionError("a given model object must not be looked up on disk")

    monkeypatch.setattr(registry, "local_folder", no_lookup)
    painter = Painter()
    pipe = Pipeline(inpainter=painter, device="cpu")
    assert pipe.models.inpainter == "test:painter" and pipe.inpainter() is painter
    mask = hole((48, 64), (10, 10, 30, 30))
    result = pipe.replace(photo(), mask=mask, prompt="x", seed=1, dilate=0, feather=0)
    assert len(painter.calls) == 1 and result.recipe["inpainter"] == "test:painter"
    assert (result.image[mask] == 200).all()


# ---------------------------------------------------------------- coarse to fine


def big_edit(**options):
    """A 320x240 photo repainted almost whole by a 64 px model: 4.4x shrunk, so refined."""
    painter = Painter()
    image = photo(240, 320, seed=1)
    mask = hole((240, 320), (10, 10, 310, 230))
    result = Pipeline(inpainter=painter, device="cpu").replace(image, mask=mask, prompt="x", seed=3, dilate=0,
                                                                feather=0, **options)
    return painter, result


def test_a_large_region_is_generated_once_then_refined_and_recorded():
    painter, result = big_edit()
    roles = [w.role for w in result.windows]
    assert roles[0] == GENERATE and set(roles[1:]) == {REFINE} and len(roles) > 10
    assert [c["strength"] for c in painter.calls] == [1.0] + [0.35] * (len(roles) - 1)
    assert [c["steps"] for c in painter.calls] == [4] + [4] * (len(roles) - 1)  # int(4 * 0.35) = 1 step
    assert result.recipe["refine_strength"] == 0.35 and result.recipe["prefill"] == "none"


def test_refine_strength_is_an_option_and_never_above_the_strength():
    painter, result = big_edit(refine_strength=0.5, strength=0.4, steps=2)
    refine_calls = painter.calls[1:]
    assert {c["strength"] for c in refine_calls} == {0.4}
    assert {c["steps"] for c in painter.calls} == {3}  # 2 steps at 0.4 would denoise none: 3 do one
    assert result.recipe["refine_strength"] == 0.4 and result.recipe["strength"] == 0.4


def test_no_refine_generates_a_large_region_once():
    painter, result = big_edit(no_refine=True)
    assert [w.role for w in result.windows] == [GENERATE] and len(painter.calls) == 1
    assert result.recipe["no_refine"] is True and "refine_strength" not in result.recipe


def test_a_small_region_records_no_refine_strength():
    result = Pipeline(inpainter=Painter(), device="cpu").replace(
        photo(), mask=hole((48, 64), (20, 20, 30, 30)), prompt="x", seed=1)
    assert [w.role for w in result.windows] == [GENERATE] and "refine_strength" not in result.recipe


# ---------------------------------------------------------------- colour matching


@pytest.mark.parametrize("no_color_match, inside", [(False, 200), (True, 215)])
def test_the_models_colour_drift_is_removed_unless_no_color_match(no_color_match, inside):
    image = photo()
    mask = hole((48, 64), (12, 10, 52, 38))  # the window is the whole photo, at the model's size
    result = Pipeline(inpainter=Painter(drift=15), device="cpu").replace(
        image, mask=mask, prompt="x", seed=1, dilate=0, feather=0, no_color_match=no_color_match)
    assert (result.image[mask] == inside).all()
    np.testing.assert_array_equal(result.image[~mask], image[~mask])
    assert result.recipe.get("no_color_match", False) is no_color_match


# ---------------------------------------------------------------- pre-fill


def test_prefill_per_operation_defaults_and_what_the_recipe_records(tiny):
    image = photo(seed=2)
    mask = hole((48, 64), (20, 14, 44, 34))
    painter = Painter()
    pipe = Pipeline(inpainter=painter, remover=str(tiny["lama"]), device="cpu")
    replaced = pipe.replace(image, mask=mask, prompt="x", seed=1)
    assert replaced.recipe["prefill"] == "none" and "remover" not in replaced.recipe
    assert replaced.recipe["strength"] == 1.0 and [w.role for w in replaced.windows] == [GENERATE]
    wide = pipe.outpaint(image, expand="0,0,16,0", prompt="x", seed=1)
    assert wide.recipe["prefill"] == "lama" and wide.recipe["remover"] == str(tiny["lama"])
    assert wide.recipe["strength"] == 0.99  # the model starts from the noised fill, not pure noise
    assert [w.role for w in wide.windows] == [PREFILL, GENERATE]
    removed = Pipeline(remover=painter, device="cpu").remove(image, mask=mask, seed=1, prefill="telea")
    assert removed.recipe["prefill"] == "telea" and removed.recipe["remover"] == "test:painter"


def test_the_model_starts_from_the_prefilled_hole_and_the_ring_stays_the_photo():
    image = photo(64, 64, seed=3)
    mask = hole((64, 64), (20, 14, 44, 34))
    painter = Painter()
    Pipeline(remover=painter, device="cpu").remove(image, mask=mask, seed=1, prefill="telea", dilate=0, feather=0,
                                                  padding=40)
    (given,) = painter.calls[0]["images"]  # the whole 64x64 photo is the window, at the model's size
    assert given.shape == image.shape
    np.testing.assert_array_equal(given[~mask], image[~mask])
    assert not np.array_equal(given[mask], image[mask])  # Telea filled it from the surroundings


def test_prefill_matters_only_below_full_strength(tiny, cat_rgb):
    # diffusers' inpainting pipelines start from pure noise at strength 1 and blank the hole in their
    # masked-image input, so a fill changes nothing there; at the pre-fill's 0.99 it does.
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    small = cat_rgb[:64, :96]

    def outpaint(**options):
        return pipe.outpaint(small, expand="0,0,32,0", steps=2, seed=4, no_color_match=True, **options).image

    assert np.array_equal(outpaint(prefill="telea", strength=1.0), outpaint(prefill="none", strength=1.0))
    assert not np.array_equal(outpaint(prefill="telea"), outpaint(prefill="none", strength=0.99))


def test_preflight_checks_the_prefill_remover_before_any_model_loads(tiny, cat_rgb, monkeypatch):
    from promptpaint.backends import inpainters

    monkeypatch.setattr(inpainters, "load_inpainter", lambda *a, **k: pytest.fail("loaded before the check"))
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), remover="lama", device="cpu")  # no LaMa here
    with pytest.raises(ModelLoadError, match=r"--prefill telea needs no download, --prefill none skips it\)$"):
        pipe.outpaint(cat_rgb, aspect="16:9", seed=1)
    # a removal by LaMa or Telea pre-fills nothing, so it needs no second remover
    removed = Pipeline(remover="telea", device="cpu").remove(cat_rgb, mask=hole(cat_rgb.shape[:2], (50, 50, 90, 90)))
    assert "prefill" not in removed.recipe


# ------------------------------------------------------------------ --deep-cache (#16)

def test_deep_cache_reaches_the_model_is_recorded_and_replays_exactly(tiny_pipeline, cat_rgb):
    box = "100,60,180,140"
    plain = tiny_pipeline.replace(cat_rgb, box=box, prompt="a ball", seed=3, steps=6)
    cached = tiny_pipeline.replace(cat_rgb, box=box, prompt="a ball", seed=3, steps=6, deep_cache=True)
    assert cached.recipe["deep_cache"] is True and "deep_cache" not in plain.recipe
    assert not np.array_equal(cached.image, plain.image)
    assert np.array_equal(cached.image[~cached.mask], cat_rgb[~cached.mask])  # outside the edit untouched
    again = tiny_pipeline.run(cat_rgb, {"edits": [cached.recipe]})
    assert np.array_equal(again.image, cached.image)


def test_deep_cache_with_a_remover_does_nothing_and_records_nothing(tiny_pipeline, cat_rgb):
    removed = tiny_pipeline.remove(cat_rgb, box="100,60,180,140", seed=3, deep_cache=True)
    assert "deep_cache" not in removed.recipe  # LaMa is one pass: there is nothing to cache


def test_deep_cache_needs_a_unet(tiny, cat_rgb):
    from promptpaint.errors import UnsupportedOperationError

    pipe = Pipeline(segmenter=str(tiny["sam"]), inpainter=str(tiny["flux-fill"]), device="cpu")
    with pytest.raises(UnsupportedOperationError, match="has no UNet: --deep-cache works with SD 1.5 and SDXL"):
        pipe.replace(cat_rgb, box="100,60,180,140", prompt="a ball", seed=3, deep_cache=True, prefill="none")
