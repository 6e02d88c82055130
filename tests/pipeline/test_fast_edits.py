"""--fast and live previews through the Pipeline (operations, EditJob, recipes): the option reaches
the model, the recipe records the LoRA and the resolved steps, guidance and sampler, replay is
exact, and previews reach only a progress callback that asked for them."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.errors import InvalidOptionError, ModelLoadError
from promptpaint.pipeline.recipe import load_recipe

BOX = "100,60,180,140"


@pytest.fixture(scope="module")
def lora(tiny) -> str:
    return str(tiny["lcm-lora"])


def test_fast_replace_records_the_lora_and_settings_and_replays_exactly(tiny_pipeline, cat_rgb, lora):
    plain = tiny_pipeline.replace(cat_rgb, box=BOX, prompt="a ball", seed=3)
    fast = tiny_pipeline.replace(cat_rgb, box=BOX, prompt="a ball", seed=3, fast=True, fast_lora=lora)
    recipe = fast.recipe
    assert recipe["fast"] is True and recipe["fast_lora"] == lora  # the name given is kept
    assert (recipe["steps"], recipe["guidance"], recipe["strength"]) == (4, 1.0, 1.0)  # LCM's, resolved
    assert recipe["scheduler"] == "LCMScheduler" and plain.recipe["scheduler"] == "DPMSolverMultistepScheduler"
    assert "fast" not in plain.recipe and "fast_lora" not in plain.recipe
    assert not np.array_equal(fast.image, plain.image)
    outside = ~fast.mask
    assert np.array_equal(fast.image[outside], cat_rgb[outside])  # pixels outside the edit untouched
    again = tiny_pipeline.run(cat_rgb, {"edits": [recipe]})  # the recipe, scheduler key and all
    assert np.array_equal(again.image, fast.image)
    assert again.recipe["edits"][0] == recipe


def test_fast_default_lora_is_checked_before_any_model_loads(tiny_pipeline, cat_rgb, monkeypatch):
    """The published LCM-LoRA is not downloaded here (HF_HUB_OFFLINE): one line, before loading."""
    from promptpaint.backends import registry

    loads = []
    monkeypatch.setattr(registry, "cached", lambda key, build: loads.append(key))
    with pytest.raises(ModelLoadError, match="lcm-sd15 \\(latent-consistency/lcm-lora-sdv1-5\\).*models fetch"):
        tiny_pipeline.replace(cat_rgb, box=BOX, prompt="a ball", seed=3, fast=True)
    assert loads == []


def test_fast_removal_with_lama_is_already_fast_and_records_nothing(tiny_pipeline, cat_rgb, tiny):
    result = tiny_pipeline.remove(cat_rgb, box=BOX, seed=3, fast=True)
    assert "fast" not in result.recipe and "steps" not in result.recipe  # LaMa: one pass, nothing to speed up
    diffusion = tiny_pipeline.remove(cat_rgb, box=BOX, seed=3, fast=True, fast_lora=str(tiny["lcm-lora"]),
                                     remover=str(tiny["sd-inpaint"]))
    assert diffusion.recipe["fast"] is True and diffusion.recipe["steps"] == 4


def test_fast_lora_needs_fast_and_recorded_keys_are_read_back():
    with pytest.raises(InvalidOptionError, match="--fast-lora needs --fast"):
        load_recipe({"edits": [{"op": "replace", "box": BOX, "prompt": "x", "fast_lora": "lcm-sd15"}]})
    recipe = load_recipe({"edits": [{"op": "replace", "box": BOX, "prompt": "x", "fast": True,
                                     "scheduler": "LCMScheduler"}]})
    assert recipe.edits[0].fast is True  # the sampler is recorded for the reader; fast decides it


def test_previews_reach_only_a_caller_that_asked(tiny_pipeline, cat_rgb):
    asked, plain = [], []

    def with_previews(step, total, preview=None):
        asked.append((step, total, preview))

    result = tiny_pipeline.replace(cat_rgb, box=BOX, prompt="a ball", seed=3, steps=4, progress=with_previews,
                                   previews=2)
    tiny_pipeline.replace(cat_rgb, box=BOX, prompt="a ball", seed=3, steps=4,
                          progress=lambda step, total: plain.append((step, total)))  # would fail on preview=
    assert [(s, t) for s, t, _ in asked] == plain  # the same passes and steps, pictures aside
    passes: list[list] = []
    for call in asked:  # a model pass starts at step 1 (windows, refinement tiles)
        passes.append([call]) if call[0] == 1 else passes[-1].append(call)
    sizes = {tuple(w.model_size) for w in result.windows}
    for calls in passes:
        total = calls[0][1]
        assert [s for s, _, p in calls if p is not None] == [s for s in range(1, total + 1)
                                                            if s % 2 == 0 or s == total]
        for _, _, picture in calls:
            if picture is not None:  # the window as the model generates it
                assert picture.dtype == np.uint8 and picture.shape[1::-1] in sizes
    with pytest.raises(InvalidOptionError, match="previews must be 0"):
        tiny_pipeline.replace(cat_rgb, box=BOX, prompt="a ball", previews=-1)
