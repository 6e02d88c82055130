"""promptpaint batch with the local engine: options checked before any model loads, mirrored
outputs, resume, stable seeds, batched runs, bad items, --fail-fast, and a real kill followed by
--resume."""

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
from promptpaint.batch.items import BatchItem
from promptpaint.batch.results import latest_rows, read_rows
from promptpaint.errors import PromptPaintError

#: fast (OpenCV Telea after the tiny SAM): most tests check bookkeeping, not pixels. dilate 0: the
#: tiny SAM's random mask grown by the default 8 px covers these small photos whole, which a removal refuses
RECIPE = {"box_threshold": 0, "text_threshold": 0,
          "edits": [{"op": "remove", "box": "8,8,40,40", "remover": "telea", "dilate": 0}]}


#: the tiny diffusion inpainter, where the seed decides the pixels
DIFFUSION_RECIPE = {"steps": 1, "guidance": 1, "edits": [{"op": "replace", "box": "8,8,40,40", "prompt": "a red ball"}]}


#: a row override that makes the tiny Grounding DINO find nothing (no box passes a threshold of 1)
# The recipe's box still selects something: only --require all makes a missing 'cat' fail the item.
NOTHING_FOUND = {"find": "cat", "box_threshold": 1.0, "require": "all"}


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


def test_a_partial_find_is_done_and_its_row_says_what_was_missing(tmp_path, photos, tiny):
    """#13: the recipe's box still selects something when 'cat' finds nothing: the item is edited."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    shutil.copy(photos / "img00.png", jobs / "partial.png")
    manifest = write_jsonl(jobs / "list.jsonl", [{"image": "partial.png", "find": "cat", "box_threshold": 1.0}])
    out = tmp_path / "out"
    result = batch_cli(manifest, "--recipe", write_recipe(tmp_path), "-o", out, *tiny_args(tiny))
    assert result.exit_code == 0, result.output
    row = latest_rows(read_rows(out / "manifest.jsonl"))["partial.png"]
    assert (row["status"], row["missing"]) == ("done", ["cat"])


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
    assert rows["nothing.png"]["missing"] == ["cat"] and rows["good.png"]["missing"] == []
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
    recipe = write_recipe(tmp_path, {"edits": [{"op": "remove", "box": "8,8,40,40", "dilate": 0}]})  # tiny LaMa: not too fast
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


def test_seamless_options_as_recipe_keys_and_manifest_columns(tmp_path, photos, tiny):
    """A recipe default (no_color_match) and per-row columns (prefill, refine_strength, no_refine)
    reach each item's edit and its output's embedded recipe."""
    from promptpaint.pipeline.recipe import recipe_from_image

    (tmp_path / "in").mkdir()
    for name in ("img00.png", "img03.tif"):
        shutil.copy(photos / name, tmp_path / "in" / name)
    manifest = write_jsonl(tmp_path / "in" / "list.jsonl", [
        {"image": "img00.png", "prefill": "telea", "refine_strength": 0.3},
        {"image": "img03.tif", "no_refine": True}])
    recipe = write_recipe(tmp_path, {**DIFFUSION_RECIPE, "no_color_match": True})
    result = batch_cli(manifest, "--recipe", recipe, "-o", tmp_path / "out", *tiny_args(tiny))
    assert result.exit_code == 0, result.output
    first = recipe_from_image(tmp_path / "out" / "img00.png")["edits"][0]
    second = recipe_from_image(tmp_path / "out" / "img03.png")["edits"][0]
    assert first["prefill"] == "telea" and first["no_color_match"] is True and first["strength"] == 0.99
    assert "refine_strength" not in first  # given, but this small box needed no refine tiles: not used
    assert second["no_refine"] is True and second["prefill"] == "none" and second["no_color_match"] is True


def test_fast_from_the_recipe_and_a_manifest_column(tmp_path, photos, tiny):
    """``fast: true`` (#16) as a recipe default for every item, and as a manifest column for one."""
    from promptpaint.pipeline.recipe import recipe_from_image

    shutil.copy(photos / "img00.png", tmp_path / "a.png")
    shutil.copy(photos / "img03.tif", tmp_path / "b.tif")
    lora = str(tiny["lcm-lora"])
    recipe = write_recipe(tmp_path, {**DIFFUSION_RECIPE, "fast": True, "fast_lora": lora})
    out = tmp_path / "out"
    assert batch_cli(tmp_path / "a.png", "--recipe", recipe, "-o", out, *tiny_args(tiny)).exit_code == 0
    edit = recipe_from_image(out / "a.png")["edits"][0]
    assert (edit["fast"], edit["fast_lora"], edit["scheduler"]) == (True, lora, "LCMScheduler")
    manifest = write_jsonl(tmp_path / "rows.jsonl", [{"image": str(tmp_path / "a.png")},
                                                     {"image": str(tmp_path / "b.tif"), "fast": True,
                                                      "fast_lora": lora}])
    out = tmp_path / "out2"
    assert batch_cli(manifest, "--recipe", write_recipe(tmp_path, DIFFUSION_RECIPE), "-o", out,
                     *tiny_args(tiny)).exit_code == 0
    plain, fast = (recipe_from_image(next(out.rglob(f"{name}.png")))["edits"][0] for name in ("a", "b"))
    assert "fast" not in plain and fast["fast"] is True
