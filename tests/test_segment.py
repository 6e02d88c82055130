"""Issue 2 end to end: text -> masks with the tiny models, through the CLI and the Python API."""

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
from promptpaint.errors import NothingFoundError, UnsupportedOperationError
from promptpaint.pipeline.pipeline import Pipeline

LOOSE = ["--box-threshold", "0", "--text-threshold", "0"]


def _cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


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


def test_image_encoded_once_for_many_prompts(tiny, cat_rgb):
    pipe = Pipeline(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]), device="cpu")
    segmenter = pipe.segmenter()
    image = cat_rgb.copy()
    image[0, 0] = (1, 2, 3)  # content no other test used: a fresh cache key
    before = segmenter.encode_count
    calls = []
    detector = pipe.detector()
    original = detector.detect
    detector.detect = lambda *a, **k: calls.append(a[1]) or original(*a, **k)
    try:
        pipe.segment(image, find="cat. tree", box_threshold=0, text_threshold=0)
        pipe.segment(image, find="dog", exclude="face", box_threshold=0, text_threshold=0)
        pipe.segment(image, box="10,10,100,100")
    finally:
        detector.detect = original
    assert segmenter.encode_count - before == 1
    assert calls == [["cat", "tree"], ["dog", "face"]]  # every label of a request in one pass


def test_sam3_encodes_once_for_all_labels(tiny, cat_rgb):
    pipe = Pipeline(segmenter=str(tiny["sam3"]), device="cpu")
    sam3 = pipe.segmenter()
    image = cat_rgb.copy()
    image[0, 0] = (7, 7, 7)
    before = sam3.encode_count
    seg = pipe.segment(image, find="cat. tree. sky", box_threshold=0)
    pipe.segment(image, find="dog", box_threshold=0)
    assert sam3.encode_count - before == 1
    assert set(seg.detections.labels) == {"cat", "tree", "sky"}
    with pytest.raises(UnsupportedOperationError):
        pipe.segment(image, box="0,0,10,10")


def test_exclude_subtracts_and_algebra_applies(tiny, cat_rgb):
    pipe = Pipeline(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]), device="cpu")
    seg = pipe.segment(cat_rgb, find="cat", exclude="face", box_threshold=0, text_threshold=0)
    assert seg.detections.labels and set(seg.detections.labels) == {"cat"}
    assert set(seg.excluded.labels) == {"face"}
    expected = np.logical_or.reduce(seg.detections.masks) & ~np.logical_or.reduce(seg.excluded.masks)
    assert np.array_equal(seg.mask, expected)
    inverted = pipe.segment(cat_rgb, find="cat", exclude="face", box_threshold=0, text_threshold=0, invert=True)
    assert np.array_equal(inverted.mask, ~expected)
    largest = pipe.segment(cat_rgb, find="cat", box_threshold=0, text_threshold=0, pick="largest")
    assert len(largest.detections) == 1


def test_user_mask_skips_detection_and_segmentation(tmp_path, cat_rgb):
    mask = np.zeros(cat_rgb.shape[:2], bool)
    mask[20:60, 30:90] = True
    path = tmp_path / "m.png"
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    pipe = Pipeline(detector="/no/such", segmenter="/no/such", device="cpu")
    seg = pipe.segment(cat_rgb, mask=str(path), dilate=2)
    assert seg.mask.sum() > mask.sum() and seg.mask[mask].all()
    assert seg.detections.labels == ("mask",)


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


def test_threshold_changes_reuse_the_detector_forward(tiny, cat_rgb):
    """Moving a threshold slider re-filters cached scores: no second forward pass."""
    pipe = Pipeline(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]), device="cpu")
    detector = pipe.detector()
    image = cat_rgb.copy()
    image[1, 1] = (9, 9, 9)
    before = detector.forward_count
    loose = pipe.detect(image, "cat. tree", box_threshold=0, text_threshold=0)
    strict = pipe.detect(image, "cat. tree", box_threshold=float(np.median(loose.scores)), text_threshold=0)
    assert detector.forward_count - before == 1
    assert 0 < len(strict) < len(loose)


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
