"""Issue 3 end to end with the tiny models: the fidelity contract, windows, outpaint, recipes, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from promptpaint.cli.app import main
from promptpaint.core.images import read_png_metadata
from promptpaint.errors import InvalidOptionError, ModelLoadError
from promptpaint.pipeline.pipeline import Pipeline

LOOSE = ["--box-threshold", "0", "--text-threshold", "0"]


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _assert_contract(original: np.ndarray, out_path, mask_path):
    """Same size; zero pixels differ outside the saved mask; pixels inside did change."""
    out = np.array(Image.open(out_path).convert("RGB"))
    mask = np.array(Image.open(mask_path)) > 0
    assert out.shape == original.shape
    assert mask.shape == original.shape[:2] and mask.any()
    changed = (out != original).any(axis=-1)
    assert not changed[~mask].any(), f"{int(changed[~mask].sum())} pixels changed outside the mask"
    assert changed[mask].mean() > 0.5
    return out, mask


@pytest.mark.parametrize("args, models", [
    (["replace", "--find", "cat", "--prompt", "a dog"], {"--inpainter": "sd-inpaint"}),
    (["replace", "--keep", "cat", "--prompt", "a beach"], {"--inpainter": "sd-inpaint"}),
    (["replace", "--find", "cat", "--prompt", "a dog"], {"--inpainter": "sdxl-inpaint"}),
    (["replace", "--find", "cat", "--prompt", "a dog"], {"--inpainter": "flux-fill"}),
    (["remove", "--find", "cat"], {"--remover": "lama"}),
    (["remove", "--mask", "{hole}"], {"--remover": None}),  # telea: no download, needs context around
])
def test_fidelity_contract(tiny, cat_png, cat_rgb, tmp_path, args, models):
    out, mask = tmp_path / "out.png", tmp_path / "mask.png"
    hole = np.zeros(cat_rgb.shape[:2], np.uint8)
    hole[100:160, 200:300] = 255  # the random tiny SAM may select the whole photo: Telea needs a border
    Image.fromarray(hole).save(tmp_path / "hole.png")
    args = [a.replace("{hole}", str(tmp_path / "hole.png")) for a in args]
    model_args = [x for k, v in models.items() for x in (k, tiny[v] if v else "telea")]
    result = _cli(*args[:1], cat_png, *args[1:], *model_args, *LOOSE, "--detector", tiny["grounding-dino"],
                  "--segmenter", tiny["sam"], "--steps", "2", "--seed", "5", "-o", out, "--save-mask", mask)
    assert result.exit_code == 0, result.output
    _assert_contract(cat_rgb, out, mask)


def test_small_object_is_generated_at_working_size(tiny):
    """A 60x60 object in a 2000x1500 photo gets a window of its own, enlarged to the model size."""
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (1500, 2000, 3), dtype=np.uint8)
    pipe = Pipeline(segmenter=str(tiny["sam"]), inpainter=str(tiny["sd-inpaint"]), device="cpu")
    mask = np.zeros((1500, 2000), bool)
    mask[700:760, 1200:1260] = True
    result = pipe.replace(photo, mask=mask, prompt="a red ball", steps=1, seed=0, working_size=512, dilate=0,
                          feather=0)
    (job,) = result.windows
    assert job.model_size == (512, 512)  # not a 512x384 squash of the whole photo
    assert job.window.width <= 256 and job.window.height <= 256  # a crop around the object
    assert job.window.x0 <= 1200 and job.window.x1 >= 1260
    changed = (result.image != photo).any(axis=-1)
    assert not changed[~mask].any() and changed[mask].all()


def test_far_apart_regions_get_their_own_windows(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    mask = np.zeros(cat_rgb.shape[:2], bool)
    mask[10:20, 10:20] = True
    mask[270:290, 420:440] = True
    result = pipe.replace(cat_rgb, mask=mask, prompt="x", steps=1, seed=0, dilate=0, feather=0, padding=8)
    assert len(result.windows) == 2


@pytest.mark.parametrize("option, value, size, offset", [
    ("--aspect", "16:9", (533, 300), (41, 0)),
    ("--expand", "10,20,30,40", (491, 360), (10, 20)),
    ("--size", "500x400", (500, 400), (24, 50)),
])
def test_outpaint_keeps_original_exactly(tiny, cat_png, cat_rgb, tmp_path, option, value, size, offset):
    out, mask = tmp_path / "wide.png", tmp_path / "mask.png"
    result = _cli("outpaint", cat_png, option, value, "--inpainter", tiny["sd-inpaint"], "--steps", "2",
                  "--seed", "1", "-o", out, "--save-mask", mask)
    assert result.exit_code == 0, result.output
    canvas = np.array(Image.open(out))
    assert (canvas.shape[1], canvas.shape[0]) == size
    if option == "--aspect":
        assert abs(canvas.shape[1] / canvas.shape[0] - 16 / 9) < 1 / canvas.shape[0]
    x, y = offset
    assert np.array_equal(canvas[y:y + 300, x:x + 451], cat_rgb)
    edit_mask = np.array(Image.open(mask)) > 0
    assert not edit_mask[y:y + 300, x:x + 451].any() and edit_mask.sum() == size[0] * size[1] - 451 * 300


def test_outpaint_anchor_left_places_original_at_left(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    result = pipe.outpaint(cat_rgb, aspect="2:1", anchor="left", steps=1, seed=0)
    assert result.image.shape == (300, 600, 3)
    assert np.array_equal(result.image[:, :451], cat_rgb)


def test_large_outpaint_is_filled_tile_by_tile(tiny):
    """A canvas much larger than the working size is filled in several windows, not one latent."""
    photo = np.full((200, 300, 3), 120, np.uint8)
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    result = pipe.outpaint(photo, expand="0,0,600,0", steps=1, seed=0)
    assert result.image.shape == (200, 900, 3)
    assert len(result.windows) > 1
    assert all(max(j.model_size) <= 2 * 64 for j in result.windows)  # tiny model: working size 64
    assert np.array_equal(result.image[:, :300], photo)


RECIPE = {
    "steps": 2, "box_threshold": 0, "text_threshold": 0,
    "edits": [
        {"op": "replace", "keep": "cat", "prompt": "a beach"},
        {"op": "replace", "box": "100,80,180,160", "prompt": "a dog", "seed": 11},
        {"op": "outpaint", "aspect": "16:9"},
    ],
}


def test_three_step_recipe_is_reproducible_and_replayable(tiny, cat_rgb, tmp_path):
    cat_png = tmp_path / "small-cat.png"  # a smaller photo keeps the three runs quick
    Image.fromarray(cat_rgb[50:250, 100:400]).save(cat_png)
    recipe = tmp_path / "recipe.yaml"
    import yaml

    recipe.write_text(yaml.safe_dump({**RECIPE, "seed": 3}))
    models = ["--detector", tiny["grounding-dino"], "--segmenter", tiny["sam"], "--inpainter", tiny["sd-inpaint"]]
    outs = [tmp_path / f"run{i}.png" for i in range(3)]
    for out in outs[:2]:
        result = _cli("run", cat_png, recipe, *models, "-o", out)
        assert result.exit_code == 0, result.output
    assert outs[0].read_bytes() == outs[1].read_bytes()
    embedded = json.loads(read_png_metadata(outs[0])["promptpaint"])
    assert [e["op"] for e in embedded["edits"]] == ["replace", "replace", "outpaint"]
    assert embedded["edits"][1]["seed"] == 11 and embedded["edits"][0]["seed"] == 3
    assert "torch" in embedded["versions"]
    result = _cli("run", cat_png, "--from-image", outs[0], "-o", outs[2])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.array(Image.open(outs[2])), np.array(Image.open(outs[0])))
    assert Image.open(outs[0]).size[0] / Image.open(outs[0]).size[1] == pytest.approx(16 / 9, abs=0.01)


def test_same_seed_same_bytes_and_variants_differ(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    mask = np.zeros(cat_rgb.shape[:2], bool)
    mask[50:150, 100:250] = True
    a = pipe.replace(cat_rgb, mask=mask, prompt="a dog", steps=2, seed=42, variants=2)
    b = pipe.replace(cat_rgb, mask=mask, prompt="a dog", steps=2, seed=42, variants=2)
    assert len(a.variants) == 2
    assert all(np.array_equal(x, y) for x, y in zip(a.variants, b.variants))
    assert not np.array_equal(a.variants[0], a.variants[1])
    assert a.recipe["seed"] == 42 and a.recipe["op"] == "replace"


def test_progress_reports_steps(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    mask = np.zeros(cat_rgb.shape[:2], bool)
    mask[50:100, 50:100] = True
    seen = []
    pipe.replace(cat_rgb, mask=mask, prompt="x", steps=3, seed=0, progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_alpha_is_restored(tiny, tmp_path, cat_rgb):
    rgba = np.dstack([cat_rgb, np.full(cat_rgb.shape[:2], 200, np.uint8)])
    src = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(src)
    out = tmp_path / "o.png"
    result = _cli("remove", src, "--box", "10,10,80,80", "--segmenter", tiny["sam"], "--remover", "telea", "-o", out)
    assert result.exit_code == 0, result.output
    back = Image.open(out)
    assert back.mode == "RGBA" and np.array_equal(np.array(back)[..., 3], rgba[..., 3])


@pytest.mark.parametrize("args, message, code", [
    (["replace", "--find", "cat"], "replace needs --prompt", 2),
    (["outpaint", "--size", "100x100"], "smaller than the image", 2),
    (["outpaint", "--aspect", "16:9", "--expand", "10"], "exactly one of", 2),
    (["outpaint"], "exactly one of", 2),
    (["replace", "--find", "cat", "--prompt", "x", "--inpainter", "telea"], "cannot be used as the inpainter", 4),
    (["remove", "--find", "cat", "--remover", "/no/such/folder"], "neither a known alias", 4),
])
def test_errors_are_one_line_and_write_nothing(tiny, cat_png, tmp_path, args, message, code):
    out = tmp_path / "out.png"
    models = [] if args[0] == "outpaint" else ["--detector", str(tiny["grounding-dino"]), "--segmenter",
                                               str(tiny["sam"])]
    result = CliRunner().invoke(main, [args[0], str(cat_png), *args[1:], "-o", str(out), *models])
    assert result.exit_code == code, result.output
    assert message in result.output and result.output.count("\n") == 1, result.output
    assert not out.exists()


def test_output_never_overwrites_input_or_existing(tiny, cat_png, tmp_path):
    before = cat_png.read_bytes()
    args = ["remove", str(cat_png), "--box", "1,1,30,30", "--segmenter", str(tiny["sam"]), "--remover", "telea"]
    result = CliRunner().invoke(main, [*args, "-o", str(cat_png), "--overwrite"])
    assert result.exit_code == 2 and "input" in result.output
    assert cat_png.read_bytes() == before
    out = tmp_path / "o.png"
    out.write_bytes(b"keep me")
    result = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.output and out.read_bytes() == b"keep me"


def test_api_errors_are_typed(tiny, cat_rgb):
    pipe = Pipeline(inpainter=str(tiny["sd-inpaint"]), device="cpu")
    with pytest.raises(InvalidOptionError):
        pipe.outpaint(cat_rgb, aspect="0:1")
    with pytest.raises(ModelLoadError):
        pipe.replace(cat_rgb, box="1,1,9,9", prompt="x", inpainter=str(tiny["sam"]))
