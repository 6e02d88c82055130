"""Batch items: discovery from folders, globs and manifests, safe output names, stable seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptpaint.batch import item_seed
from promptpaint.batch.items import BatchItem, contained_path, discover, safe_relative
from promptpaint.batch.worker import item_recipe
from promptpaint.errors import InvalidOptionError
from promptpaint.pipeline.output import variant_paths

#: fast (OpenCV Telea after the tiny SAM): most tests check bookkeeping, not pixels
RECIPE = {"box_threshold": 0, "text_threshold": 0, "edits": [{"op": "remove", "box": "8,8,40,40", "remover": "telea"}]}


#: the tiny diffusion inpainter, where the seed decides the pixels
#: a row override that makes the tiny Grounding DINO find nothing (no box passes a threshold of 1)
# ------------------------------------------------------------------------------------------ helpers
def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# ------------------------------------------------------------------------------------------ discovery
def test_folder_is_recursive_sorted_and_skips_hidden_other_files_and_the_output_folder(tmp_path):
    for name in ("b.PNG", "a/c.jpeg", "a/d.Tiff", "notes.txt", ".hidden.png", "a/._e.jpg", ".cache/f.png",
                 "out/old.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    items = discover(tmp_path, tmp_path / "out")
    assert [(i.input, i.output) for i in items] == [("a/c.jpeg", "a/c.png"), ("a/d.Tiff", "a/d.png"),
                                                    ("b.PNG", "b.png")]
    assert all(Path(i.source).is_absolute() and Path(i.source).is_file() for i in items)
    assert discover(tmp_path, tmp_path / "out", fmt="webp")[0].output == "a/c.webp"


def test_glob_outputs_are_relative_to_the_globs_fixed_part(tmp_path):
    for name in ("shoot/x/1.jpg", "shoot/2.jpg", "shoot/3.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    items = discover(str(tmp_path / "shoot" / "**" / "*.jpg"), tmp_path / "out")
    assert [(i.input, i.output) for i in items] == [("2.jpg", "2.png"), ("x/1.jpg", "x/1.png")]


def test_csv_and_jsonl_manifests_give_per_row_overrides(tmp_path):
    (tmp_path / "sub").mkdir()
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("image,prompt,seed,mask\nsub/a.jpg,a beach,7,\nb.png,,,m.png\n", encoding="utf-8-sig")
    a, b = discover(csv_path, tmp_path / "out")
    assert (a.input, a.output, a.overrides) == ("sub/a.jpg", "sub/a.png", {"prompt": "a beach", "seed": "7"})
    assert a.source == str(tmp_path / "sub" / "a.jpg")
    assert b.overrides == {"mask": str(tmp_path / "m.png")}  # relative to the manifest, like images
    jsonl = write_jsonl(tmp_path / "list.jsonl", [{"image": "sub/a.jpg", "seed": 3, "keep": "dog"}, {"image": "b.png"}])
    assert [i.overrides for i in discover(jsonl, tmp_path / "out")] == [{"seed": 3, "keep": "dog"}, {}]


@pytest.mark.parametrize("rows, message", [
    ([{"image": "a.png", "promt": "typo"}], "unknown column 'promt'"),
    ([{"image": "a.png", "op": "remove"}], "unknown column 'op'"),
    ([{"prompt": "x"}], "no 'image'"),
    ([{"image": "a.png"}, {"image": "./a.png"}], "already listed"),
])
def test_manifest_mistakes_are_refused_before_any_work(tmp_path, rows, message):
    with pytest.raises(InvalidOptionError, match=message):
        discover(write_jsonl(tmp_path / "m.jsonl", rows), tmp_path / "out")


def test_hostile_manifest_paths_get_outputs_inside_outdir(tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    rows = [{"image": "../../etc/x.png"}, {"image": "/etc/passwd.png"}, {"image": "a/../../b.png"},
            {"image": "..\\..\\w.png"}, {"image": "ok/../fine.png"}]
    items = discover(write_jsonl(jobs / "m.jsonl", rows), tmp_path / "out")
    outputs = [i.output for i in items]
    assert outputs[-1] == "fine.png"
    assert all(o.startswith("_external/") and ".." not in o.split("/") for o in outputs[:-1])
    assert len(set(outputs)) == len(outputs)
    root = (tmp_path / "out").resolve()
    for item in items:
        assert contained_path(tmp_path / "out", item.output).is_relative_to(root)


def test_contained_path_refuses_escapes_including_symlinks(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidOptionError):
        contained_path(out, "../x.png")
    with pytest.raises(InvalidOptionError, match="outside"):
        contained_path(out, "link/x.png")
    assert safe_relative("/a//./b\nc.png") == "a/b_c.png"


def test_colliding_output_names_keep_their_old_suffix(tmp_path):
    for name in ("a.jpg", "a.png", "b.jpg"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"x")
    assert [i.output for i in discover(tmp_path / "in", tmp_path / "out")] == ["a_jpg.png", "a_png.png", "b.png"]


def test_outputs_can_never_land_on_inputs(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(InvalidOptionError, match="output folder is the input folder"):
        discover(tmp_path, tmp_path)
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"image": "x/a.png"}])
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "a.png").write_bytes(b"x")
    with pytest.raises(InvalidOptionError, match="would overwrite the input"):
        discover(manifest, tmp_path)  # OUTDIR/x/a.png is the input itself


def test_seeds_are_stable_per_item_and_rows_may_set_them():
    item = BatchItem("shoot/a.jpg", "/x/shoot/a.jpg", "shoot/a.png")
    recipe = {"edits": [RECIPE["edits"][0], {"op": "remove", "box": "1,1,5,5"}]}
    seeds = [e.seed for e in item_recipe(recipe, item).edits]
    assert seeds == [item_seed("shoot/a.jpg", 0), item_seed("shoot/a.jpg", 1)] and seeds[0] != seeds[1]
    assert item_seed("shoot/b.jpg") != seeds[0]
    with_row = BatchItem("a", "/a", "a.png", {"seed": "7", "prompt": "a cat"})
    edits = item_recipe(recipe, with_row).edits
    assert [e.seed for e in edits] == [7, 7] and edits[0].prompt == "a cat"
    assert variant_paths("a/b.png", 1) == ["a/b.png"]
    assert variant_paths("a/b.png", 2) == ["a/b_0.png", "a/b_1.png"]


def test_seamless_options_are_manifest_columns(tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("image,prefill,refine_strength,no_refine,no_color_match\na.png,telea,0.3,true,\n")
    (item,) = discover(manifest, tmp_path / "out")
    recipe = {"edits": [{"op": "replace", "box": "1,1,9,9", "prompt": "x"}]}
    (edit,) = item_recipe(recipe, item).edits
    assert (edit.prefill, edit.refine_strength, edit.no_refine, edit.no_color_match) == ("telea", 0.3, True, False)
