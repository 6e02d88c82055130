"""benchmarks/interactive.py, the click-to-mask latency benchmark: a smoke run with the tiny kit (the
harness works and reports its figures; no timing assertion), and the clicks it replays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.interactive import clicks, summary

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_run_reports_click_latency_per_photo_size(tmp_path, tiny):
    out = tmp_path / "interactive.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PROMPTPAINT_TINY_MODELS": str(tiny["sam"].parent)}
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.interactive", "--models", "tiny", "--size", "96x64", "--clicks", "3",
         "--json", str(out)], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "click -> new mask" in process.stdout
    report = json.loads(out.read_text())
    (result,) = report["results"]
    assert result["size"] == "96x64"
    assert result["page_format"] == "png"  # points alone: the page asks for the bare mask
    for key in ("click_ms", "click_png_ms", "click_json_ms"):
        assert result[key]["n"] == 3 and 0 < result[key]["min_ms"] <= result[key]["median_ms"] <= result[key]["max_ms"]
    assert result["first_click_ms"] > 0 and report["target_ms"] == 300


def test_clicks_grow_one_point_at_a_time_inside_the_photo():
    sessions = clicks(40, 30, count=9)
    assert len(sessions) == 10
    assert sessions[0] == sessions[0][:1] and sessions[0][0][2] == 1  # the first click is positive
    for before, after in zip(sessions, sessions[1:]):
        assert after[:-1] == before or len(after) == 1  # one more point, or a fresh start
        assert after[0][2] == 1
    assert all(0 <= x < 40 and 0 <= y < 30 and label in (0, 1) for s in sessions for x, y, label in s)
    assert max(len(s) for s in sessions) == 4


def test_summary_median_and_p90():
    figures = summary([float(v) for v in range(1, 11)])
    assert figures == {"median_ms": 5.5, "p90_ms": 9.0, "min_ms": 1.0, "max_ms": 10.0, "n": 10}
