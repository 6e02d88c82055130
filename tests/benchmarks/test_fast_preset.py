"""benchmarks.run --preset fast: promptpaint's side samples in fast mode, the JSON records the
preset and its projection, and the regression guards are printed (figures are never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.run import checks, project_default_steps

ROOT = Path(__file__).resolve().parents[2]


def test_fast_preset_smoke_run(tmp_path, tiny):
    out = tmp_path / "fast.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PROMPTPAINT_TINY_MODELS": str(tiny["sam"].parent)}
    process = subprocess.run([sys.executable, "-m", "benchmarks.run", "--models", "tiny", "--device", "cpu",
                              "--steps", "2", "--preset", "fast", "--json", str(out)],
                             check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stderr[-3000:]
    report = json.loads(out.read_text())
    ours = report["promptpaint"]
    assert report["config"]["preset"] == "fast" and ours["preset"] == "fast"
    assert (ours["scheduler"], ours["default_steps"], ours["guidance"]) == ("LCMScheduler", 4, 1.0)
    assert ours["lora"] == str(tiny["lcm-lora"].resolve())
    assert report["naive"]["scheduler"] == "DDIMScheduler" and report["naive"]["default_steps"] == 50
    projection = report["projected_default_steps"]
    assert projection["preset"] == "fast" and projection["steps"] == {"naive": 50, "promptpaint": 4}
    assert [c["name"] for c in report["checks"]] == ["segment stage", "total at the same steps",
                                                     "total projected at default steps, fast preset"]
    assert "check total projected at default steps, fast preset >= 8.0x" in process.stdout


def _side(total, steps, default_steps, step_s, calls=2):
    return {"total_s": total, "steps": steps, "default_steps": default_steps, "step_s": step_s,
            "diffusion_calls": calls, "calls": {"inpaint": calls}}


def test_projection_and_checks_by_hand():
    naive, ours = _side(200.0, 2, 50, 10.0, calls=3), {**_side(100.0, 2, 4, 5.0), "preset": "fast"}
    projection = project_default_steps(naive, ours)
    # naive: 200 + 3 calls x 48 steps x 10 s; promptpaint: 100 + 2 calls x 2 steps x 5 s
    assert (projection["naive_total_s"], projection["promptpaint_total_s"]) == (1640.0, 120.0)
    assert projection["ratio"] == 13.67
    report = {"config": {"preset": "fast", "steps": 2}, "ratio": {"segment": 2.4, "total": 2.0},
              "projected_default_steps": projection}
    assert [(c["value"], c["ok"]) for c in checks(report)] == [(2.4, False), (2.0, True), (13.67, True)]
    report["config"] = {"preset": "default", "steps": None}
    assert [c["name"] for c in checks(report)] == ["segment stage"]
