"""The benchmark harness: a smoke run with the tiny kit (schema and fidelity, no timing assertions),
the ablations in-process, and the pure helpers both sides share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import ablations
from benchmarks.job import JOB, LABELS, SideConfig, changed_outside, choose_boxes, clip_to_box, photo
from benchmarks.run import parse_args

ROOT = Path(__file__).resolve().parents[2]
SIDE_KEYS = {"load_s", "detect_s", "segment_s", "inpaint_s", "total_s", "peak_rss_mb", "changed_outside_share"}


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory, tiny) -> dict:
    """One tiny run of the entry point, as CI runs it (with a batch of 2 photos)."""
    out = tmp_path_factory.mktemp("bench") / "tmp.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PROMPTPAINT_TINY_MODELS": str(tiny["sam"].parent)}
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--models", "tiny", "--device", "cpu", "--steps", "2",
         "--batch", "2", "--json", str(out)],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "naive/pp" in process.stdout  # the table is printed
    return json.loads(out.read_text())


def test_smoke_run_reports_both_sides_per_stage(smoke_report):
    for side in ("naive", "promptpaint"):
        figures = smoke_report[side]
        assert SIDE_KEYS <= figures.keys()
        assert all(figures[key] >= 0 for key in SIDE_KEYS)
        assert figures["total_s"] >= figures["detect_s"] + figures["segment_s"] + figures["inpaint_s"] - 1e-3
        assert figures["batch"]["photos"] == 2
    assert set(smoke_report["ratio"]) >= {"detect", "segment", "inpaint", "total"}
    assert smoke_report["naive"]["calls"] == {"detect": 3, "segment": 3, "inpaint": 3}
    assert smoke_report["promptpaint"]["calls"]["detect"] == 1
    assert smoke_report["promptpaint"]["calls"]["segment"] == 1
    # promptpaint removes with its default remover, LaMa (one call, no denoising steps)
    assert smoke_report["promptpaint"]["remover"] == "LaMa ONNX, dynamic size"
    assert smoke_report["promptpaint"]["diffusion_calls"] == smoke_report["promptpaint"]["calls"]["inpaint"] - 1
    assert smoke_report["config"]["steps"] == 2
    assert smoke_report["naive"]["steps"] == smoke_report["promptpaint"]["steps"] == 2
    assert set(smoke_report["boxes"]["source"]) == set(LABELS)


def test_smoke_run_fidelity(smoke_report):
    """promptpaint leaves every pixel outside its edits alone; squash-and-stretch changes most of them."""
    assert smoke_report["promptpaint"]["changed_outside_share"] == 0
    assert smoke_report["naive"]["changed_outside_share"] > 0.5


def test_ablations_in_process(tiny, tmp_path):
    size = (160, 120)
    single = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(photo("coffee", size)).save(single)
    batch = []
    for i, name in enumerate(("chelsea", "astronaut")):
        batch.append(str(tmp_path / f"batch-{i}.jpg"))
        Image.fromarray(photo(name, size)).save(batch[-1])
    boxes = [[e.fallback_box[0] * size[0], e.fallback_box[1] * size[1], e.fallback_box[2] * size[0],
              e.fallback_box[3] * size[1]] for e in JOB]
    config = SideConfig(device="cpu", models={"grounding-dino": str(tiny["grounding-dino"]), "sam": str(tiny["sam"]),
                                              "inpainter": str(tiny["sd-inpaint"]), "remover": str(tiny["lama"])},
                        photo=str(single), batch=batch, out_dir=str(tmp_path), steps=1, boxes={str(single): boxes})
    result = ablations.run(config)
    measured = ["one_detection_pass", "embedding_reuse", "batched_boxes", "crop_window", "steps", "sdpa",
                "remover", "io_overlap", "batched_photos"]
    for name in measured:
        entry = result[name]
        assert entry["without_s"] > 0 and entry["with_s"] > 0 and entry["speedup"] > 0, name
    for name in ("half_precision", "channels_last", "vae_tiling", "offload"):
        assert result[name] == ablations.NOT_ON_CPU


def test_choose_boxes_prefers_plausible_detections():
    size = (200, 100)
    xyxy = np.array([[0, 0, 200, 100], [10, 10, 60, 60], [20, 20, 70, 70], [0, 0, 2, 2]], np.float32)
    scores = np.array([0.9, 0.5, 0.8, 0.99], np.float32)
    labels = ("coffee", "coffee", "coffee", "spoon")  # the full-image box and the speck are not plausible
    boxes, sources = choose_boxes(xyxy, scores, labels, size)
    assert boxes[0] == [20, 20, 70, 70] and sources[0] == "detector"
    assert sources[1:] == ["fallback", "fallback"]
    fx0, fy0, fx1, fy1 = JOB[2].fallback_box
    assert boxes[2] == pytest.approx([fx0 * 200, fy0 * 100, fx1 * 200, fy1 * 100], abs=0.1)


def test_clip_to_box_and_changed_outside():
    mask = np.ones((10, 10), bool)
    clipped = clip_to_box(mask, [2, 3, 5, 7])
    assert clipped.sum() == 3 * 4 and clipped[3:7, 2:5].all()
    assert clip_to_box(np.zeros((10, 10), bool), [2, 3, 5, 7]).sum() == 12  # empty mask: the box itself

    before = np.zeros((10, 10, 3), np.uint8)
    after = before.copy()
    after[0, 0, 1] = 1  # outside the edit
    after[5, 5] = 9  # inside
    area = np.zeros((10, 10), bool)
    area[4:6, 4:6] = True
    figures = changed_outside(before, after, area)
    assert figures["changed_outside_share"] == pytest.approx(1 / 96, abs=1e-6)
    assert figures["edited_share"] == 0.04


def test_size_option_is_checked():
    assert parse_args(["--models", "full", "--json", "x.json"]).size == (1024, 768)
    assert parse_args(["--models", "tiny", "--json", "x.json", "--size", "320x240"]).size == (320, 240)
    with pytest.raises(SystemExit):
        parse_args(["--models", "tiny", "--json", "x.json", "--size", "big"])


def test_big_lama_fourier_unit_is_the_ortho_fft():
    """The stand-in's DFT matrices compute torch.fft.rfftn / irfftn (norm="ortho") exactly."""
    import torch

    from benchmarks.big_lama import FourierUnit

    for h, w in ((8, 8), (6, 9)):
        unit = FourierUnit(2, (h, w))
        x = torch.randn(1, 2, h, w)
        spectrum = torch.fft.rfftn(x, dim=(-2, -1), norm="ortho")
        real, imag = unit.rfft2(x)
        torch.testing.assert_close(real, spectrum.real, atol=1e-5, rtol=0)
        torch.testing.assert_close(imag, spectrum.imag, atol=1e-5, rtol=0)
        torch.testing.assert_close(unit.irfft2(spectrum.real, spectrum.imag), x, atol=1e-5, rtol=0)


def test_big_lama_export_runs_through_the_lama_remover(tmp_path):
    """The stand-in's ONNX (here 64x64 with one residual block) has the public export's interface."""
    from benchmarks.big_lama import export
    from promptpaint.pipeline.pipeline import Pipeline

    export(tmp_path / "lama_fp32.onnx", size=64, n_blocks=1)
    remover = Pipeline(remover=str(tmp_path), device="cpu").remover()
    assert remover.fixed_size == (64, 64) and remover.input_names == ["image", "mask"]
    crop = np.random.default_rng(0).integers(0, 256, (48, 80, 3), np.uint8)
    hole = np.zeros((48, 80), bool)
    hole[10:30, 20:60] = True
    (filled,) = remover.inpaint([crop], hole)
    assert filled.shape == crop.shape and filled.dtype == np.uint8
