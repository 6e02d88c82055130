"""benchmarks/gpu.sh, run as on the GPU machine but on the CPU with the tiny kit: every section
runs in its own process and reports its figures (schema only: no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_script_runs_every_section_on_the_cpu(tmp_path, tiny):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "PROMPTPAINT_TINY_MODELS": str(tiny["sam"].parent), "PYTHON": sys.executable}
    # torch.compile on a CPU takes minutes even for the tiny UNet: that section is skipped here. 2 steps
    # and one timed replace per figure: the script's paths, not its figures, are under test (about a
    # minute on a quiet 2-core machine; the budget is generous for a loaded one).
    process = subprocess.run(["bash", "benchmarks/gpu.sh", "--device", "cpu", "--models", "tiny", "--skip", "compile",
                              "--steps", "2", "--repeats", "1", "--budget", "1200", "--json", str(out)], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=1300, check=False)
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-3000:]
    report = json.loads(out.read_text())
    sections = report["sections"]
    assert sections["compile"] == "skipped"
    for preset, scheduler in (("default", "DPMSolverMultistepScheduler"), ("fast", "LCMScheduler")):
        entry = sections["latency"][preset]
        assert entry["latency_s"] > 0 and len(entry["runs_s"]) == 1 and entry["steps"] == 2
        assert entry["scheduler"] == scheduler
    assert sections["latency"]["fast"]["guidance"] == 1.0
    assert sections["naive"]["latency_s"] > 0 and sections["naive"]["steps"] == 2
    assert set(sections["batch"]["batch_size"]) == {"1", "4", "8"}
    assert all(entry["photos_per_min"] > 0 for entry in sections["batch"]["batch_size"].values())
    assert set(sections["dtype"]) == {"float32", "bfloat16"}  # a CPU has no float16 kernels
    assert set(report["ratio"]) == {"naive_over_default", "naive_over_fast"}
    assert "promptpaint fast" in process.stdout  # the summary is printed


def test_gpu_script_refuses_a_missing_gpu_in_one_line(tmp_path):
    process = subprocess.run(["bash", "benchmarks/gpu.sh", "--device", "cuda", "--json", str(tmp_path / "x.json")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                             env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHON": sys.executable})
    assert process.returncode != 0
    assert process.stderr.strip() == "gpu.sh: no CUDA GPU is visible to torch; pass --device cpu for the CPU check"
