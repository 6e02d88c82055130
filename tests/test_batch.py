"""promptpaint batch: item discovery, safe output names, the results manifest, the local engine,
bad items, --fail-fast, and a real kill followed by --resume."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from promptpaint.batch import item_seed
from promptpaint.batch.items import BatchItem, contained_path, discover, safe_relative
from promptpaint.batch.results import ResultsWriter, done_inputs, latest_rows, read_rows, remove_stale_temporaries
from promptpaint.batch.worker import item_recipe
from promptpaint.pipeline.output import variant_paths
from promptpaint.errors import InvalidOptionError, PromptPaintError

#: fast (OpenCV Telea after the tiny SAM): most tests check bookkeeping, not pixels
RECIPE = {"box_threshold": 0, "text_threshold": 0, "edits": [{"op": "remove", "box": "8,8,40,40", "remover": "telea"}]}
#: the tiny diffusion inpainter, where the seed decides the pixels
DIFFUSION_RECIPE = {"steps": 1, "guidance": 1, "edits": [{"op": "replace", "box": "8,8,40,40", "prompt": "a red ball"}]}
#: a row override that makes the tiny Grounding DINO find nothing (no box passes a threshold of 1)
NOTHING_FOUND = {"find": "cat", "box_threshold": 1.0}
PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "immunohistochemistry")
SUFFIXES = (".png", ".jpg", ".webp", ".tif", ".JPEG")


# ------------------------------------------------------------------------------------------ helpers
def make_photos(root: Path, count: int = 20) -> list[Path]:
    """Small crops of real photos in three folder levels with every supported suffix.

    Sizes are never square: the tiny Grounding DINO cannot run on square inputs (see the report)."""
    import skimage.data

    paths = []
    for i in range(count):
        photo = getattr(skimage.data, PHOTOS[i % len(PHOTOS)])()[..., :3]
        width, height = (96, 112, 128)[i % 3], (64, 80)[i % 2]
        top, left = (i * 13) % (photo.shape[0] - 2 * height), (i * 29) % (photo.shape[1] - 2 * width)
        crop = Image.fromarray(photo[top:top + 2 * height, left:left + 2 * width]).resize((width, height))
        path = root / ("", "shoot-a", "shoot-b/deep")[i % 3] / f"img{i:02d}{SUFFIXES[i % len(SUFFIXES)]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        crop.save(path)
        paths.append(path)
    return paths


def tiny_args(tiny) -> list[str]:
    return ["--detector", str(tiny["grounding-dino"]), "--segmenter", str(tiny["sam"]),
            "--inpainter", str(tiny["sd-inpaint"]), "--remover", str(tiny["lama"]), "--device", "cpu"]


def batch_cli(*args: str):
    from promptpaint.cli.app import main

    return CliRunner().invoke(main, ["batch", *map(str, args)], catch_exceptions=False)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_recipe(folder: Path, recipe: dict = RECIPE) -> Path:
    path = folder / "recipe.json"
    path.write_text(json.dumps(recipe))
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def done_counts(out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in read_rows(out / "manifest.jsonl"):
        if row["status"] == "done":
            counts[row["input"]] = counts.get(row["input"], 0) + 1
    return counts


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    make_photos(root)
    return root


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, photos, tiny):
    """One local-engine run over the 20 photos; returns (OUTDIR, CLI result, input digests before)."""
    work = tmp_path_factory.mktemp("local")
    before = {p: digest(p) for p in photos.rglob("*") if p.is_file()}
    out = work / "out"
    result = batch_cli(photos, "--recipe", write_recipe(work), "-o", out, *tiny_args(tiny))
    return out, result, before


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


# ------------------------------------------------------------------------------------------ results
def test_results_survive_a_torn_last_line_and_the_last_row_wins(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "manifest.jsonl").write_bytes(
        b'{"input": "a.jpg", "status": "failed"}\n{"input": "a.jpg", "status": "done", "output": "a.png"}\n'
        b'{"input": "b.jpg", "status": "do')  # killed in the middle of an append
    with ResultsWriter(tmp_path) as writer:
        writer.append({"input": "b.jpg", "status": "done", "output": "b.png"})
    rows = read_rows(tmp_path / "manifest.jsonl")
    assert [r["input"] for r in rows] == ["a.jpg", "a.jpg", "b.jpg"]
    assert latest_rows(rows)["a.jpg"]["status"] == "done"
    assert done_inputs(tmp_path) == {"a.jpg"}  # b.png is missing: b.jpg must be done again


def test_one_run_per_outdir_and_only_our_temporaries_are_swept(tmp_path):
    (tmp_path / "sub").mkdir()
    ours, theirs = tmp_path / "sub" / ".a.png.k3_x9QzB.tmp", tmp_path / ".notes.tmp"
    ours.write_bytes(b"half an image")
    theirs.write_bytes(b"a user's file")
    assert remove_stale_temporaries(tmp_path) == 1 and not ours.exists() and theirs.exists()
    with ResultsWriter(tmp_path), pytest.raises(PromptPaintError, match="another batch is running"):
        ResultsWriter(tmp_path)
    ResultsWriter(tmp_path).close()  # released


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


def test_ray_engine_without_ray_says_how_to_install(monkeypatch):
    from promptpaint.batch.ray_engine import _import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(PromptPaintError, match=r"pip install 'promptpaint\[ray\]'"):
        _import_ray()


def test_bad_options_exit_2_before_loading_models(tmp_path, photos):
    recipe = write_recipe(tmp_path)
    result = batch_cli(photos, "--recipe", recipe, "-o", tmp_path / "o", "--resume", "--overwrite")
    assert result.exit_code == 2 and "not both" in result.stderr
    result = batch_cli(photos, "--recipe", recipe, "-o", tmp_path / "o", "--workers", "2")
    assert result.exit_code == 2 and "--engine ray" in result.stderr
    result = batch_cli(tmp_path / "missing", "--recipe", recipe, "-o", tmp_path / "o")
    assert result.exit_code == 2 and "input not found" in result.stderr


def test_a_model_that_cannot_load_stops_the_run_with_exit_4(tmp_path, photos):
    from promptpaint.batch.ray_engine import _FATAL, RayItemWorker
    from promptpaint.batch.worker import WorkerConfig

    result = batch_cli(photos, "--recipe", write_recipe(tmp_path), "-o", tmp_path / "out",
                       "--segmenter", str(tmp_path / "no-such-model"), "--device", "cpu")
    assert result.exit_code == 4 and "no-such-model" in result.stderr
    assert read_rows(tmp_path / "out" / "manifest.jsonl") == []  # not recorded as item failures
    # A Ray actor hands the error back as a row (Ray would lose its type); the driver re-raises it.
    actor = RayItemWorker(WorkerConfig(RECIPE, str(tmp_path / "out"), {"segmenter": "/no/model"}).to_json())
    item = BatchItem("img00.png", str(photos / "img00.png"), "img00.png")
    rows = actor({"item": np.array([item.to_json(), item.to_json()], dtype=object)})["row"]
    assert len(rows) == 1 and "/no/model" in json.loads(rows[0])[_FATAL]


# ------------------------------------------------------------------------------------------ local engine
def test_local_run_mirrors_every_input_with_stable_seeds(local_run, photos):
    from promptpaint.pipeline.recipe import recipe_from_image

    out, result, before = local_run
    assert result.exit_code == 0, result.stderr
    assert "20 done, 0 skipped, 0 failed" in result.stderr and "images/min" in result.stderr
    rows = read_rows(out / "manifest.jsonl")
    inputs = sorted(p.relative_to(photos).as_posix() for p in photos.rglob("img*"))
    assert sorted(r["input"] for r in rows) == inputs
    for row in rows:
        assert row["status"] == "done" and row["error"] is None
        assert row["output"] == str(Path(row["input"]).with_suffix(".png"))
        assert row["seed"] == item_seed(row["input"])
        assert set(row["timings"]) == {"read", "edit", "write", "total"}
        output = out / row["output"]
        assert recipe_from_image(output)["edits"][0]["seed"] == row["seed"]
        with Image.open(photos / row["input"]) as source, Image.open(output) as edited:
            assert edited.size == source.size
    assert {p: digest(p) for p in before} == before  # inputs untouched
    assert not list(out.rglob("*.tmp"))


def test_an_earlier_run_needs_resume_which_skips_what_is_done(local_run, photos, tiny, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(local_run[0], out)
    recipe = write_recipe(tmp_path)
    again = batch_cli(photos, "--recipe", recipe, "-o", out, *tiny_args(tiny))
    assert again.exit_code == 2 and "--resume" in again.stderr
    redo = "shoot-a/img01.jpg"
    (out / "shoot-a" / "img01.png").unlink()  # a deleted output is done again
    kept = digest(out / "img00.png")
    resumed = batch_cli(photos, "--recipe", recipe, "-o", out, "--resume", *tiny_args(tiny))
    assert resumed.exit_code == 0, resumed.stderr
    assert "1 done, 19 skipped, 0 failed" in resumed.stderr
    assert read_rows(out / "manifest.jsonl")[-1]["input"] == redo
    assert digest(out / "img00.png") == kept


def test_stable_seeds_make_a_redone_item_identical(tmp_path, photos, tiny):
    from promptpaint.pipeline.recipe import recipe_from_image

    (tmp_path / "in").mkdir()
    for name in ("img00.png", "img03.tif"):
        shutil.copy(photos / name, tmp_path / "in" / name)
    recipe, out = write_recipe(tmp_path, DIFFUSION_RECIPE), tmp_path / "out"
    assert batch_cli(tmp_path / "in", "--recipe", recipe, "-o", out, *tiny_args(tiny)).exit_code == 0
    first = digest(out / "img00.png")
    assert recipe_from_image(out / "img00.png")["edits"][0]["seed"] == item_seed("img00.png")
    (out / "img00.png").unlink()
    result = batch_cli(tmp_path / "in", "--recipe", recipe, "-o", out, "--resume", *tiny_args(tiny))
    assert "1 done, 1 skipped" in result.stderr
    assert digest(out / "img00.png") == first


def test_batched_and_one_at_a_time_runs_give_the_same_images(tmp_path, photos, tiny, monkeypatch):
    from promptpaint.pipeline.pipeline import Pipeline

    sizes: list[int] = []
    run_many = Pipeline.run_many
    monkeypatch.setattr(Pipeline, "run_many",
                        lambda self, jobs, **kw: sizes.append(len(jobs)) or run_many(self, jobs, **kw))
    recipe = write_recipe(tmp_path, DIFFUSION_RECIPE)
    for size in (1, 4):
        result = batch_cli(photos / "shoot-a", "--recipe", recipe, "-o", tmp_path / f"b{size}", "--batch-size", size,
                           *tiny_args(tiny))
        assert result.exit_code == 0, result.stderr
    assert max(sizes) > 1 and sum(sizes) <= 7  # batches formed with --batch-size 4 only (1 edits alone)
    one, four = (latest_rows(read_rows(tmp_path / f"b{n}" / "manifest.jsonl")) for n in (1, 4))
    assert one.keys() == four.keys() and len(one) == 7
    for name, row in one.items():
        assert (row["status"], row["seeds"], row["output"]) == (four[name]["status"], four[name]["seeds"],
                                                               four[name]["output"])
        a, b = (np.asarray(Image.open(tmp_path / f"b{n}" / row["output"]), np.int16) for n in (1, 4))
        assert a.shape == b.shape and np.abs(a - b).max() <= 2  # float rounding of batched products at most


def test_batch_size_defaults_to_4_on_a_gpu_and_1_on_a_cpu(tmp_path, tiny, photos, monkeypatch):
    from promptpaint.batch.worker import ItemWorker, WorkerConfig
    from promptpaint.pipeline.pipeline import Pipeline

    worker = ItemWorker(WorkerConfig({"edits": []}, str(tmp_path), {"device": "cpu"}))
    assert worker.batch_size == 1
    worker.pipeline._device = "cuda"  # what pick_device resolves on a machine with a GPU
    assert worker.batch_size == 4
    assert ItemWorker(WorkerConfig({"edits": []}, str(tmp_path), {"device": "cpu"}, batch_size=3)).batch_size == 3
    # Without --batch-size on this CPU, every image is edited alone (no run_many at all).
    called = []
    monkeypatch.setattr(Pipeline, "run_many", lambda self, jobs, **kw: called.append(len(jobs)))
    result = batch_cli(photos / "shoot-a", "--recipe", write_recipe(tmp_path, DIFFUSION_RECIPE), "-o",
                       tmp_path / "out", *tiny_args(tiny))
    assert result.exit_code == 0 and called == []


def test_bad_items_are_recorded_and_the_rest_succeed(tmp_path, photos, tiny):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    shutil.copy(photos / "img00.png", jobs / "good.png")
    shutil.copy(photos / "img00.png", jobs / "nothing.png")
    (jobs / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(photos / "img00.png", outside / "evil.png")
    manifest = write_jsonl(jobs / "list.jsonl", [
        {"image": "good.png", "seed": 11},
        {"image": "corrupt.jpg"},
        {"image": "nothing.png", **NOTHING_FOUND},
        {"image": "../outside/evil.png"},
        {"image": "missing.png"},
    ])
    recipe = write_recipe(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    out = tmp_path / "out"
    result = batch_cli(manifest, "--recipe", recipe, "-o", out, *tiny_args(tiny))
    assert result.exit_code == 1
    assert "2 done, 0 skipped, 3 failed" in result.stderr
    rows = latest_rows(read_rows(out / "manifest.jsonl"))
    assert rows["good.png"]["status"] == "done" and rows["good.png"]["seed"] == 11
    assert (rows["corrupt.jpg"]["status"], rows["corrupt.jpg"]["error_type"]) == ("failed", "ImageLoadError")
    assert (rows["nothing.png"]["status"], rows["nothing.png"]["error_type"]) == ("failed", "NothingFoundError")
    assert "nothing found for 'cat'" in rows["nothing.png"]["error"]
    assert rows["missing.png"]["error_type"] == "ImageLoadError"
    evil = rows[str(outside / "evil.png")]
    assert evil["status"] == "done" and evil["output"].startswith("_external/")
    assert (out / evil["output"]).is_file()
    created = sorted(set(tmp_path.rglob("*")) - set(before))
    assert all(p.is_relative_to(out) for p in created)  # nothing written outside OUTDIR


def test_fail_fast_stops_at_the_first_failure(tmp_path, photos, tiny):
    shutil.copytree(photos / "shoot-a", tmp_path / "in")
    (tmp_path / "in" / "aaa-corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # sorts first
    out = tmp_path / "out"
    result = batch_cli(tmp_path / "in", "--recipe", write_recipe(tmp_path), "-o", out, "--fail-fast",
                       *tiny_args(tiny))
    assert result.exit_code == 1 and "--fail-fast" in result.stderr
    rows = read_rows(out / "manifest.jsonl")
    assert [r["status"] for r in rows].count("failed") == 1 and rows[0]["input"] == "aaa-corrupt.png"
    assert len(rows) < 1 + 7  # shoot-a holds 7 photos: most were never started


# ------------------------------------------------------------------------------------------ kill, resume
def test_a_killed_run_resumed_ends_with_every_item_done_exactly_once(tmp_path, photos, tiny):
    out = tmp_path / "out"
    recipe = write_recipe(tmp_path, {"edits": [{"op": "remove", "box": "8,8,40,40"}]})  # tiny LaMa: not too fast
    command = [sys.executable, "-m", "promptpaint", "batch", str(photos), "--recipe", str(recipe),
               "-o", str(out), *tiny_args(tiny)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}  # tiny models: threads only cost
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(read_rows(out / "manifest.jsonl")) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    finished_before = len(done_counts(out))
    assert 3 <= finished_before < 20, "the kill must land mid-run"
    resumed = subprocess.run(command + ["--resume"], env=env, capture_output=True, text=True, timeout=300,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{finished_before} skipped" in resumed.stderr
    counts = done_counts(out)
    assert len(counts) == 20 and set(counts.values()) == {1}
    assert all((out / r["output"]).is_file() for r in read_rows(out / "manifest.jsonl"))
    assert not list(out.rglob("*.tmp"))

