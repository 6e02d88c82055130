"""The `promptpaint` commands in-process (click's CliRunner) and as a subprocess, with the tiny
models: the fidelity contract of every edit command, segment and detect output, recipes, one-line
errors, the output rules and a light --help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from promptpaint.cli.app import main
from promptpaint.core import rle
from promptpaint.core.images import read_png_metadata
from promptpaint.errors import NothingFoundError
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
    # --pick 0: every random box's mask together covers the whole photo, which a removal refuses
    (["remove", "--find", "cat", "--pick", "0"], {"--remover": "lama"}),
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


@pytest.mark.parametrize("option, value, size, offset", [
    ("--aspect", "16:9", (533, 300), (41, 0)),
    ("--expand", "10,20,30,40", (491, 360), (10, 20)),
    ("--size", "500x400", (500, 400), (24, 50)),
])
def test_outpaint_keeps_original_exactly(tiny, cat_png, cat_rgb, tmp_path, option, value, size, offset):
    out, mask = tmp_path / "wide.png", tmp_path / "mask.png"
    result = _cli("outpaint", cat_png, option, value, "--inpainter", tiny["sd-inpaint"], "--remover", tiny["lama"],
                  "--steps", "2", "--seed", "1", "-o", out, "--save-mask", mask)
    assert result.exit_code == 0, result.output
    canvas = np.array(Image.open(out))
    assert (canvas.shape[1], canvas.shape[0]) == size
    if option == "--aspect":
        assert abs(canvas.shape[1] / canvas.shape[0] - 16 / 9) < 1 / canvas.shape[0]
    x, y = offset
    assert np.array_equal(canvas[y:y + 300, x:x + 451], cat_rgb)
    edit_mask = np.array(Image.open(mask)) > 0
    assert not edit_mask[y:y + 300, x:x + 451].any() and edit_mask.sum() == size[0] * size[1] - 451 * 300


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
    models = ["--detector", tiny["grounding-dino"], "--segmenter", tiny["sam"], "--inpainter", tiny["sd-inpaint"],
              "--remover", tiny["lama"]]  # the outpaint pre-fills with LaMa
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


def test_a_mask_edit_embeds_the_mask_and_replays_from_any_folder(tmp_path, cat_rgb, monkeypatch):
    """#10 item 7: the recipe holds the mask itself (COCO RLE), not a path relative to where it ran."""
    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    elsewhere.mkdir()
    Image.fromarray(cat_rgb).save(first / "cat.png")
    hole = np.zeros(cat_rgb.shape[:2], np.uint8)
    hole[100:160, 200:300] = 255
    Image.fromarray(hole).save(first / "hole.png")
    monkeypatch.chdir(first)
    result = _cli("remove", "cat.png", "--mask", "hole.png", "--remover", "telea", "-o", "out.png")
    assert result.exit_code == 0, result.output
    embedded = json.loads(read_png_metadata(first / "out.png")["promptpaint"])["edits"][0]
    assert np.array_equal(rle.decode(embedded["mask"]), hole == 255)
    monkeypatch.chdir(elsewhere)
    (first / "hole.png").unlink()  # nothing but the output PNG is needed to replay
    result = _cli("run", first / "cat.png", "--from-image", first / "out.png", "-o", "again.png")
    assert result.exit_code == 0, result.output
    assert (elsewhere / "again.png").read_bytes() == (first / "out.png").read_bytes()


def test_a_default_telea_removal_records_an_id_that_replays(tmp_path, cat_png, monkeypatch):
    """A remover that was not given is recorded by its id ('opencv:telea'), which must name it again."""
    hole = np.zeros((300, 451), np.uint8)
    hole[100:160, 200:300] = 255
    Image.fromarray(hole).save(tmp_path / "hole.png")
    monkeypatch.setenv("PROMPTPAINT_REMOVER", "telea")
    result = _cli("remove", cat_png, "--mask", tmp_path / "hole.png", "-o", tmp_path / "out.png")
    assert result.exit_code == 0, result.output
    assert json.loads(read_png_metadata(tmp_path / "out.png")["promptpaint"])["edits"][0]["remover"] == "opencv:telea"
    monkeypatch.delenv("PROMPTPAINT_REMOVER")
    result = _cli("run", cat_png, "--from-image", tmp_path / "out.png", "-o", tmp_path / "again.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "out.png").read_bytes()


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


@pytest.mark.parametrize("args, message", [
    (["replace", "{folder}", "--find", "cat", "--prompt", "x"],
     "error: Invalid value for 'IMAGE': File '{folder}' is a directory. (see 'promptpaint replace --help')"),
    (["replace"], "error: Missing argument 'IMAGE'. (see 'promptpaint replace --help')"),
    (["segment", "{image}", "--bogus"],
     "error: No such option '--bogus'. Did you mean '--box'? (see 'promptpaint segment --help')"),
    (["frobnicate"], "error: No such command 'frobnicate'. (see 'promptpaint --help')"),
])
def test_usage_errors_are_one_line(tmp_path, cat_png, args, message):
    """#10 item 9: click printed Usage/Try/Error over four lines."""
    args = [a.format(folder=tmp_path, image=cat_png) for a in args]
    proc, _ = _run(*args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == message.format(folder=tmp_path), proc.stderr


def test_an_unknown_alias_exits_2_with_did_you_mean_among_that_roles_aliases(cat_png, tmp_path):
    result = CliRunner().invoke(main, ["remove", str(cat_png), "--box", "1,1,30,30", "--remover", "lamma",
                                       "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 2
    assert result.output.startswith("error: unknown remover 'lamma': did you mean 'lama'? remover aliases are ")
    assert result.output.count("\n") == 1 and "sam-b" not in result.output and "gdino-tiny" not in result.output


def test_float16_on_the_cpu_is_one_line_before_any_model_loads(tiny, cat_png, tmp_path):
    """#10 item 9: diffusers warned three times (once per component) and then ran or failed."""
    proc, _ = _run("replace", cat_png, "--box", "10,10,60,60", "--prompt", "a dog", "--segmenter", tiny["sam"],
                   "--inpainter", tiny["sd-inpaint"], "--device", "cpu", "--dtype", "float16", "-o", tmp_path / "o.png")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --dtype float16 needs a GPU (cuda or mps); on the CPU use float32 or bfloat16"


def test_warnings_for_a_clamped_box_and_a_whole_image_edit_are_one_line_each(tiny, cat_png, cat_rgb, tmp_path):
    seg = CliRunner().invoke(main, ["segment", str(cat_png), "--box", "300,200,600,400", "--segmenter",
                                    str(tiny["sam"]), "-o", str(tmp_path / "seg")])
    assert seg.exit_code == 0, seg.output
    clamped = "--box 300,200,600,400 reaches outside the 451x300 image: clamped to 300,200,451,300"
    assert seg.stderr == f"warning: {clamped}\n"
    assert json.loads((tmp_path / "seg" / "detections.json").read_text())["clamped"] == [clamped]
    everything = tmp_path / "all.png"
    Image.fromarray(np.full(cat_rgb.shape[:2], 255, np.uint8)).save(everything)
    replaced = CliRunner().invoke(main, ["replace", str(cat_png), "--mask", str(everything), "--prompt", "a beach",
                                         "--inpainter", str(tiny["sd-inpaint"]), "--steps", "1", "-o",
                                         str(tmp_path / "r.png")])
    assert replaced.exit_code == 0, replaced.output
    assert replaced.stderr == "warning: the edit covers the whole image: nothing of the original is kept\n"
    removed = CliRunner().invoke(main, ["remove", str(cat_png), "--mask", str(everything), "--remover", "telea",
                                        "-o", str(tmp_path / "x.png")])
    assert removed.exit_code == 2 and removed.output.count("\n") == 1
    assert "covers the whole image: a removal has nothing left to fill" in removed.output


@pytest.mark.parametrize("args, message", [
    (["--box", "600,10,700,100"], "--box 600,10,700,100 lies entirely outside the 451x300 image"),
    (["--point", "10,10,0"], "--point: no positive point (x,y,1) and no --box or --find: nothing to select"),
])
def test_prompts_selecting_nothing_fail_in_one_line_before_any_model_loads(cat_png, tmp_path, args, message):
    result = CliRunner().invoke(main, ["remove", str(cat_png), *args, "--segmenter", "/no/such/segmenter",
                                       "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 2 and result.output == f"error: {message}\n"


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


def _check_segment_folder(out: Path, size: tuple[int, int]) -> dict:
    """mask.png at the input's size, overlay.png, and RLEs that decode back to the PNGs."""
    report = json.loads((out / "detections.json").read_text())
    mask = np.array(Image.open(out / "mask.png"))
    assert mask.shape == (size[1], size[0]) and set(np.unique(mask)) <= {0, 255}
    assert np.array_equal(rle.decode(report["mask"]), mask == 255)
    assert Image.open(out / "overlay.png").size == size
    assert report["instances"], "no instance written"
    for item in report["instances"]:
        instance = np.array(Image.open(out / item["file"])) == 255
        assert np.array_equal(rle.decode(item["rle"]), instance)
        assert item["area"] == int(instance.sum())
        assert len(item["box"]) == 4
    assert report["image_size"] == list(size)
    return report


@pytest.mark.parametrize("detector, segmenter, find", [
    ("grounding-dino", "sam", "cat. tree"),
    ("owlv2", "sam", "cat"),  # random OWLv2 weights may give every box to one label
    ("grounding-dino", "sam2", "cat. tree"),
    (None, "sam3", "cat. tree"),  # SAM 3 alone: text -> masks
])
def test_segment_cli_every_backend(tiny, cat_png, tmp_path, detector, segmenter, find):
    out = tmp_path / "seg"
    args = ["segment", cat_png, "--find", find, "--segmenter", tiny[segmenter], "-o", out, *LOOSE]
    if detector:
        args += ["--detector", tiny[detector]]
    else:
        args += ["--detector", "/no/such/detector"]  # proves SAM 3 never needs it
    result = _cli(*args)
    assert result.exit_code == 0, result.output
    report = _check_segment_folder(out, (451, 300))
    assert report["segmenter"] == str(tiny[segmenter])
    assert report["box_threshold"] == 0.0


def test_segment_with_box_needs_no_detector(tiny, cat_png, tmp_path):
    out = tmp_path / "seg"
    result = _cli("segment", cat_png, "--box", "100,50,300,250", "--box", "10,10,60,60",
                  "--segmenter", tiny["sam"], "--detector", "/no/such/detector", "-o", out)
    assert result.exit_code == 0, result.output
    report = _check_segment_folder(out, (451, 300))
    assert [i["label"] for i in report["instances"]] == ["box", "box"]
    assert report["instances"][0]["box"] == [100, 50, 300, 250]


def test_segment_refuses_to_overwrite_an_earlier_run(tiny, cat_png, tmp_path):
    out = tmp_path / "seg"
    args = ["segment", cat_png, "--box", "10,10,200,200", "--box", "50,50,100,100", "--segmenter", tiny["sam"],
            "-o", out]
    assert _cli(*args).exit_code == 0
    before = (out / "mask.png").read_bytes()
    result = CliRunner().invoke(main, [str(a) for a in args[:-4]] + ["--segmenter", str(tiny["sam"]), "-o", str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (out / "mask.png").read_bytes() == before
    result = _cli("segment", cat_png, "--box", "10,10,200,200", "--segmenter", tiny["sam"], "-o", out, "--overwrite")
    assert result.exit_code == 0
    assert sorted(p.name for p in out.glob("instance_*.png")) == ["instance_00_box.png"]


def test_nothing_found_exit_3_names_labels(tiny, cat_png, tmp_path):
    result = CliRunner().invoke(main, ["segment", str(cat_png), "--find", "cat. tree", "-o", str(tmp_path / "o"),
                                       "--detector", str(tiny["grounding-dino"]), "--segmenter", str(tiny["sam"]),
                                       "--box-threshold", "1"])
    assert result.exit_code == 3
    assert "nothing found for 'cat', 'tree'" in result.output
    assert not (tmp_path / "o" / "mask.png").exists()
    with pytest.raises(NothingFoundError) as info:
        Pipeline(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]), device="cpu").segment(
            cat_png, find="cat", box_threshold=1)
    assert info.value.labels == ["cat"]


def test_detect_prints_json(tiny, cat_png):
    result = _cli("detect", cat_png, "--find", "cat. tree", "--detector", tiny["grounding-dino"], *LOOSE)
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["image_size"] == [451, 300]
    assert {d["label"] for d in data["detections"]} <= {"cat", "tree"}
    for d in data["detections"]:
        x0, y0, x1, y1 = d["box"]
        assert 0 <= x0 < x1 <= 451 and 0 <= y0 < y1 <= 300


# ------------------------------------------------------------------ which one, partial finds, shadows (#13)
def _centre_x(box: list[float]) -> float:
    return (box[0] + box[2]) / 2


def _area(box: list[float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _detected_cat_boxes(tiny, cat_png) -> list[list[float]]:
    result = _cli("detect", cat_png, "--find", "cat", "--detector", tiny["grounding-dino"], *LOOSE)
    assert result.exit_code == 0, result.output
    boxes = [d["box"] for d in json.loads(result.output)["detections"]]
    assert len(boxes) >= 3  # the tiny detector finds several cats at these thresholds
    return boxes


def _segment_report(tiny, cat_png, out: Path, find: str, *extra) -> dict:
    result = CliRunner().invoke(main, [str(a) for a in ("segment", cat_png, "--find", find, "--detector",
                                                        tiny["grounding-dino"], "--segmenter", tiny["sam"],
                                                        *LOOSE, *extra, "-o", out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "detections.json").read_text())


def test_segment_the_left_cat_keeps_the_leftmost_box_detect_returns(tiny, cat_png, tmp_path):
    boxes = _detected_cat_boxes(tiny, cat_png)
    report = _segment_report(tiny, cat_png, tmp_path / "left", "the left cat")
    assert [i["box"] for i in report["instances"]] == [min(boxes, key=_centre_x)]
    assert report["read"] == [{"text": "the left cat", "label": "cat", "pick": "left"}]
    assert report["missing"] == []
    # --pick says the same per label
    by_pick = _segment_report(tiny, cat_png, tmp_path / "pick", "cat", "--pick", "left")
    assert by_pick["instances"] == report["instances"]


def test_the_two_largest_cats_are_the_two_largest_boxes(tiny, cat_png, tmp_path):
    boxes = sorted(_detected_cat_boxes(tiny, cat_png), key=_area, reverse=True)
    assert _area(boxes[1]) > _area(boxes[2])  # no tie at the cut
    report = _segment_report(tiny, cat_png, tmp_path / "two", "the two largest cats")
    assert sorted(i["box"] for i in report["instances"]) == sorted(boxes[:2])
    assert report["read"] == [{"text": "the two largest cats", "label": "cat", "pick": "2 largest"}]


def test_too_few_cats_is_exit_3_in_one_line(tiny, cat_png, tmp_path):
    count = len(_detected_cat_boxes(tiny, cat_png))
    result = _cli("segment", cat_png, "--find", f"the {count + 1}th cat from the left", "--detector",
                  tiny["grounding-dino"], "--segmenter", tiny["sam"], *LOOSE, "-o", tmp_path / "o")
    assert result.exit_code == 3
    assert result.output.strip() == f"error: asked for the {count + 1}th cat from the left, found {count} cats"


def test_with_shadow_gives_a_mask_that_contains_the_mask_without_it(tiny, cat_png, tmp_path):
    """SAM 3 finds the shadows in the same encoding; tiny random weights give partial masks."""
    masks = {}
    for name, extra in (("plain", []), ("shadow", ["--with-shadow"])):
        result = _cli("remove", cat_png, "--find", "cat", *extra, "--segmenter", tiny["sam3"], "--remover", "telea",
                      "--box-threshold", "0", "--dilate", "0", "--feather", "0", "--seed", "1",
                      "-o", tmp_path / f"{name}.png", "--save-mask", tmp_path / f"{name}-mask.png")
        assert result.exit_code == 0, result.output
        masks[name] = np.array(Image.open(tmp_path / f"{name}-mask.png")) > 0
    assert masks["shadow"][masks["plain"]].all() and masks["shadow"].sum() > masks["plain"].sum()
    recipe = json.loads(read_png_metadata(tmp_path / "shadow.png")["promptpaint"])
    assert recipe["edits"][0]["with_shadow"] is True
    # segment --with-shadow says in detections.json which shadows were added
    result = _cli("segment", cat_png, "--find", "cat", "--with-shadow", "--segmenter", tiny["sam3"],
                  "--box-threshold", "0", "-o", tmp_path / "seg")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "seg" / "detections.json").read_text())
    attached = report["attached"]["shadow"]
    assert attached["found"] > 0 and attached["added"]
    assert {report["instances"][i]["label"] for i in attached["added"]} == {"shadow"}


def test_partial_find_goes_on_with_one_warning_line(tiny, cat_png, tmp_path):
    """OWLv2's tiny weights at 0.1 find cats but no rocket."""
    models = ["--detector", tiny["owlv2"], "--segmenter", tiny["sam"], "--box-threshold", "0.1"]
    result = CliRunner().invoke(main, [str(a) for a in ("segment", cat_png, "--find", "cat. rocket", *models,
                                                        "-o", tmp_path / "seg")])
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [
        "warning: nothing found for 'rocket'; went on with the rest (--require all stops instead)"]
    report = json.loads((tmp_path / "seg" / "detections.json").read_text())
    assert report["missing"] == ["rocket"] and {i["label"] for i in report["instances"]} == {"cat"}
    result = CliRunner().invoke(main, [str(a) for a in ("remove", cat_png, "--find", "cat. rocket", *models,
                                                        "--remover", "telea", "-o", tmp_path / "out.png")])
    assert result.exit_code == 0 and "warning: nothing found for 'rocket'" in result.stderr
    assert json.loads(read_png_metadata(tmp_path / "out.png")["promptpaint"])["edits"][0]["missing"] == ["rocket"]
    detected = CliRunner().invoke(main, [str(a) for a in ("detect", cat_png, "--find", "cat. rocket", *models[:2],
                                                          *models[4:])])
    assert detected.exit_code == 0 and json.loads(detected.stdout)["missing"] == ["rocket"]
    strict = CliRunner().invoke(main, [str(a) for a in ("segment", cat_png, "--find", "cat. rocket", *models,
                                                        "--require", "all", "-o", tmp_path / "strict")])
    assert strict.exit_code == 3 and "nothing found for 'rocket'" in strict.stderr
    assert not (tmp_path / "strict" / "mask.png").exists()


def _run(*args: str, env: dict | None = None, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "promptpaint", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    return proc, time.perf_counter() - started


@pytest.mark.parametrize("make_input, message", [
    (lambda p: p / "missing.jpg", "image not found"),
    (lambda p: (p / "cut.jpg").write_bytes(_jpeg_bytes()[:1500]) and p / "cut.jpg", "truncated or corrupt"),
    (lambda p: (p / "text.png").write_text("hello") and p / "text.png", "not an image"),
])
def test_bad_images_one_clear_line(tmp_path, make_input, message):
    proc, _ = _run("segment", make_input(tmp_path), "--box", "0,0,5,5", "-o", tmp_path / "o")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr


def _jpeg_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("offline", ["1", ""])
def test_unknown_model_fails_fast_with_one_line(tiny, cat_png, tmp_path, offline):
    proc, seconds = _run("segment", cat_png, "--find", "cat", "--detector", "nobody/grounding-dino-missing",
                         "--segmenter", tiny["sam"], "-o", tmp_path / "o", env={"HF_HUB_OFFLINE": offline})
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "nobody/grounding-dino-missing" in lines[0] and "local folder" in lines[0]
    assert seconds < 5, seconds


def test_help_is_fast_and_imports_no_torch():
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc, _ = _run("--help")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0 and "replace" in proc.stdout
    # CPU seconds, not wall time: the figure must not depend on what else the machine is doing.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 1.0, cpu
    probe = subprocess.run([sys.executable, "-c", "import sys; from promptpaint.cli.app import main; "
                            "print('torch' in sys.modules, 'transformers' in sys.modules)"],
                           capture_output=True, text=True)
    assert probe.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------------------------------ #11 and #10 fixes
RUN_RECIPE = '{"edits": [{"op": "remove", "box": "1,1,30,30"}]}'


@pytest.mark.parametrize("args", [
    ["replace", "--box", "1,1,30,30", "--prompt", "x", "--inpainter", "/no/such/model"],
    ["remove", "--box", "1,1,30,30", "--remover", "/no/such/model"],
    ["outpaint", "--aspect", "16:9", "--inpainter", "/no/such/model"],
    ["run", RUN_RECIPE, "--remover", "/no/such/model"],
])
def test_output_is_checked_before_any_model_loads(cat_png, tmp_path, args):
    """#10 item 8: an existing -o (or the input as -o) is refused before any model is looked up,
    for every command; here the model does not even exist, so an error about it means too late."""
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    command = [args[0], str(cat_png), *args[1:]]
    exists = CliRunner().invoke(main, [*command, "-o", str(out)])
    assert exists.exit_code == 2 and "--overwrite" in exists.output and exists.output.count("\n") == 1, exists.output
    assert out.read_bytes() == b"keep me"
    before = cat_png.read_bytes()
    is_input = CliRunner().invoke(main, [*command, "-o", str(cat_png), "--overwrite"])
    assert is_input.exit_code == 2 and "input" in is_input.output, is_input.output
    assert cat_png.read_bytes() == before
    variants = CliRunner().invoke(main, [*command, "-o", str(tmp_path / "v.png"), "--variants", "2"]
                                  if args[0] != "run" else [*command, "-o", str(tmp_path / "v.png")])
    assert variants.exit_code == 4, variants.output  # a free name gets as far as the (missing) model


def test_every_operation_is_a_command():
    from promptpaint import operations

    for name in operations.names():
        assert name in main.commands
        assert main.commands[name].help == operations.get(name).summary()


def test_the_icc_profile_survives_an_edit(tiny, cat_rgb, tmp_path):
    """#11: the input's colour profile reaches the CLI's output (it reached only batch output)."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "profiled.png"
    Image.fromarray(cat_rgb).save(src, icc_profile=icc)
    out = tmp_path / "out.png"
    result = _cli("remove", src, "--box", "100,60,180,140", "--segmenter", tiny["sam"], "--remover", "telea", "-o", out)
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.info.get("icc_profile") == icc


@pytest.mark.parametrize("detector, expected", [
    ("grounding-dino", ("box_threshold", "text_threshold")),
    ("owlv2", ("box_threshold",)),  # OWLv2 has no text threshold: none is recorded
])
def test_detect_and_segment_record_the_thresholds_used(tiny, cat_png, tmp_path, monkeypatch, detector, expected):
    """#10 item 4: thresholds not given are the detector's declared defaults, and are recorded."""
    backend = type(Pipeline(device="cpu").detector(str(tiny[detector])))
    for name in expected:  # defaults loose enough for random weights to find boxes
        monkeypatch.setattr(backend, f"default_{name}", 0.0)
    found = CliRunner().invoke(main, ["detect", str(cat_png), "--find", "cat", "--detector", str(tiny[detector])])
    assert found.exit_code == 0, found.output
    data = json.loads(found.output)
    assert {k: data[k] for k in expected} == {k: 0.0 for k in expected}
    assert ("text_threshold" in data) == ("text_threshold" in expected)
    assert data["detector"] == str(tiny[detector])
    out = tmp_path / "seg"
    segmented = _cli("segment", cat_png, "--find", "cat", "--detector", tiny[detector], "--segmenter", tiny["sam"],
                     "-o", out)
    assert segmented.exit_code == 0, segmented.output
    report = json.loads((out / "detections.json").read_text())
    assert {k: report[k] for k in expected} == {k: 0.0 for k in expected}
    assert ("text_threshold" in report) == ("text_threshold" in expected)


def test_seamless_options_round_trip_through_the_cli_and_a_replay(tiny, cat_rgb, tmp_path):
    """--refine-strength, --no-refine, --no-color-match and --prefill are flags of every painting
    command; the embedded recipe records them and replays to the same bytes."""
    help_text = _cli("replace", "--help").output
    assert all(flag in help_text for flag in ("--refine-strength", "--no-refine", "--no-color-match", "--prefill"))
    photo = tmp_path / "small.png"
    Image.fromarray(cat_rgb[:120, :160]).save(photo)
    hole = tmp_path / "hole.png"
    Image.fromarray((np.arange(160)[None, :] > 40).repeat(120, 0).astype(np.uint8) * 255).save(hole)
    out, again = tmp_path / "out.png", tmp_path / "again.png"
    result = _cli("replace", photo, "--mask", hole, "--prompt", "a wall", "--inpainter", tiny["sd-inpaint"],
                  "--steps", "2", "--seed", "3", "--refine-strength", "0.3", "--no-color-match", "--prefill", "telea",
                  "-o", out)
    assert result.exit_code == 0, result.output
    (edit,) = json.loads(read_png_metadata(out)["promptpaint"])["edits"]
    assert (edit["prefill"], edit["no_color_match"], edit["refine_strength"]) == ("telea", True, 0.3)
    assert edit["strength"] == 0.99  # pre-filled, no --strength given
    result = _cli("run", photo, "--from-image", out, "-o", again)
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.array(Image.open(again)), np.array(Image.open(out)))
    result = _cli("outpaint", photo, "--expand", "0,0,40,0", "--inpainter", tiny["sd-inpaint"], "--steps", "1",
                  "--no-refine", "--prefill", "none", "-o", tmp_path / "wide.png")
    assert result.exit_code == 0, result.output
    (wide,) = json.loads(read_png_metadata(tmp_path / "wide.png")["promptpaint"])["edits"]
    assert wide["no_refine"] is True and wide["prefill"] == "none" and "remover" not in wide


def test_a_missing_prefill_remover_is_one_line_before_any_model_loads(tiny, cat_png, tmp_path):
    result = CliRunner().invoke(main, ["outpaint", str(cat_png), "--aspect", "16:9", "--inpainter",
                                       str(tiny["sd-inpaint"]), "--remover", "lama", "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 4
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: ") and "--prefill telea needs no download" in line
    assert not (tmp_path / "o.png").exists()


def test_fast_flag_records_the_lora_and_replays_exactly(tiny, cat_rgb, tmp_path):
    """--fast (#16): few-step sampling with the LCM-LoRA; the PNG's recipe replays it exactly."""
    cat_png = tmp_path / "small-cat.png"
    Image.fromarray(cat_rgb[50:250, 100:400]).save(cat_png)
    models = ["--segmenter", tiny["sam"], "--inpainter", tiny["sd-inpaint"]]
    out, again = tmp_path / "fast.png", tmp_path / "again.png"
    result = _cli("replace", cat_png, "--box", "60,40,160,140", "--prompt", "a ball", "--seed", "4", "--fast",
                  "--fast-lora", tiny["lcm-lora"], *models, "-o", out)
    assert result.exit_code == 0, result.output
    edit = json.loads(read_png_metadata(out)["promptpaint"])["edits"][0]
    assert (edit["fast"], edit["fast_lora"], edit["steps"], edit["guidance"], edit["scheduler"]) == \
        (True, str(tiny["lcm-lora"]), 4, 1.0, "LCMScheduler")
    result = _cli("run", cat_png, "--from-image", out, "-o", again)
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.array(Image.open(again)), np.array(Image.open(out)))
    missing = _cli("replace", cat_png, "--box", "60,40,160,140", "--prompt", "a ball", "--fast", *models,
                   "-o", tmp_path / "never.png")
    assert missing.exit_code == 4 and "lcm-lora-sdv1-5" in missing.output  # not downloaded: one line, exit 4
    assert not (tmp_path / "never.png").exists()


def test_deep_cache_flag_records_itself_and_replays_exactly(tiny, cat_rgb, tmp_path):
    """--deep-cache (#16: DeepCache, kept for its 2.1x on the CPU): the PNG's recipe replays it exactly."""
    cat_png = tmp_path / "small-cat.png"
    Image.fromarray(cat_rgb[50:250, 100:400]).save(cat_png)
    out, again = tmp_path / "cached.png", tmp_path / "again.png"
    result = _cli("replace", cat_png, "--box", "60,40,160,140", "--prompt", "a ball", "--seed", "4", "--steps", "6",
                  "--deep-cache", "--segmenter", tiny["sam"], "--inpainter", tiny["sd-inpaint"], "-o", out)
    assert result.exit_code == 0, result.output
    assert json.loads(read_png_metadata(out)["promptpaint"])["edits"][0]["deep_cache"] is True
    result = _cli("run", cat_png, "--from-image", out, "-o", again)
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.array(Image.open(again)), np.array(Image.open(out)))
