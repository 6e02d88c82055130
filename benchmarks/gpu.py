"""The GPU figures in one run (``benchmarks/gpu.sh`` calls this): latency, ratio, throughput, dtypes, compile.

    python -m benchmarks.gpu --device cuda|cpu --models full|tiny [--budget SECONDS] [--skip SECTION ...]
                             [--steps N] [--repeats N] --json OUT.json

Built for a lent GPU machine without network: it builds the full-size random models there (see
:mod:`benchmarks.models`), then runs each section in a process of its own (so that every peak GPU
memory figure is that section's own), within a time budget (default 450 s in all; a section that
would overrun is stopped and says so):

- ``latency``: one replace, end to end (detect, segment, generate, paste back), on a 1024x768 photo,
  SD 1.5-size models, warm (after one replace of another photo), with the default and the fast preset;
- ``naive``: the same replace as the naive pipeline does it (50 steps, float16), for the ratio;
- ``batch``: throughput in photos per minute at ``--batch-size`` 1, 4 and 8 (``Pipeline.run_many``,
  a box-prompted replace of 8 photos);
- ``dtype``: the default replace in float16 against bfloat16 (float32 against bfloat16 on a CPU);
- ``compile``: ``--compile`` (torch.compile of the UNet): the warm-up replace that compiles, and the
  warm replace after it, against ``latency``'s default figure.

Every photo differs from the others by content, so no cached embedding or detection helps a
timed replace. On ``--device cpu --models tiny`` the same code runs in seconds (a test does so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.job import JOB, SideConfig, clip_to_box, photo

SECTIONS = ("latency", "naive", "batch", "dtype", "compile")
SIZE = {"full": (1024, 768), "tiny": (256, 192)}  # the tiny inpainter works at 64 px: keep its windows few
BATCH_SIZES = (1, 4, 8)
BATCH_PHOTOS = 8
ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
       "DIFFUSERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}


# ---------------------------------------------------------------- helpers (in a section's process)

def photos(size: tuple[int, int], count: int, salt: int):
    """``count`` versions of the coffee photo, each with other content (one pixel differs), so that
    no cache keyed by content serves a timed call."""
    base = photo("coffee", size)
    out = []
    for k in range(count):
        rgb = base.copy()
        rgb[k // size[0] % size[1], k % size[0]] ^= (salt % 251) + 1
        out.append(rgb)
    return out


def sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def seconds(device: str, fn, *args, **kwargs) -> float:
    sync(device)
    started = time.perf_counter()
    fn(*args, **kwargs)
    sync(device)
    return time.perf_counter() - started


def reset_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_mb(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def pipeline(run: dict, **options):
    from promptpaint.pipeline.pipeline import Pipeline

    models = run["models"]
    return Pipeline(detector=models["grounding-dino"], segmenter=models["sam"], inpainter=models["inpainter"],
                    remover=models["remover"], device=run["device"], **options)


def preset_options(run: dict, preset: str) -> dict:
    """The replace options of a preset: fast mode with the benchmark's LoRA, or nothing."""
    return {"fast": True, "fast_lora": run["models"]["fast-lora"]} if preset == "fast" else {}


def coffee_box(rgb) -> list[float]:
    """Where the coffee is in the photo. Both sides detect (and pay for it), then cut out this box:
    random detectors find nothing meaningful, and the same region keeps the two sides comparable."""
    h, w = rgb.shape[:2]
    fx0, fy0, fx1, fy1 = JOB[0].fallback_box
    return [fx0 * w, fy0 * h, fx1 * w, fy1 * h]


def replace(pipe, rgb, steps: int | None, options: dict) -> None:
    """One replace as a user asks for it: find the coffee, cut it out, repaint it."""
    pipe.detect(rgb, [JOB[0].label])
    box = coffee_box(rgb)
    mask = clip_to_box(pipe.segment(rgb, box=[box]).mask, box)
    pipe.replace(rgb, prompt=JOB[0].prompt, mask=mask, seed=1, steps=steps, **options)


def warm_latency(run: dict, pipe, salt: int, preset: str = "default") -> dict:
    """A replace of another photo first (warm-up), then the median of ``repeats`` replaces."""
    device, options = run["device"], preset_options(run, preset)
    warm, *timed = photos(run["size"], run["repeats"] + 1, salt)
    warmup_s = seconds(device, replace, pipe, warm, run["steps"], options)
    runs = [seconds(device, replace, pipe, rgb, run["steps"], options) for rgb in timed]
    return {"latency_s": round(statistics.median(runs), 3), "runs_s": [round(r, 3) for r in runs],
            "warmup_s": round(warmup_s, 3)}


# ---------------------------------------------------------------- sections

def section_latency(run: dict) -> dict:
    device, out = run["device"], {}
    for preset in ("default", "fast"):
        reset_peak(device)
        pipe = pipeline(run)
        inpainter = pipe.inpainter()
        if preset == "fast":
            inpainter = inpainter.fast(run["models"]["fast-lora"])
        out[preset] = {**warm_latency(run, pipe, salt=1 if preset == "default" else 2, preset=preset),
                       "steps": run["steps"] or inpainter.default_steps, "guidance": inpainter.default_guidance,
                       "scheduler": inpainter.scheduler, "dtype": str(inpainter.dtype).removeprefix("torch."),
                       "peak_cuda_mb": peak_mb(device)}
    return out


def section_naive(run: dict) -> dict:
    from PIL import Image

    from benchmarks.measure import Stopwatch
    from benchmarks.naive import NaivePipeline

    device = run["device"]
    reset_peak(device)
    config = SideConfig(device=device, models=run["models"], photo="", batch=[], out_dir="", steps=run["steps"])
    naive = NaivePipeline(config, Stopwatch(device))

    def naive_replace(rgb) -> None:
        image = Image.fromarray(rgb)
        naive.detect(image, JOB[0].label)
        box = coffee_box(rgb)
        mask = clip_to_box(naive.segment(image, box), box)
        naive.inpaint(image, mask, JOB[0].prompt, JOB[0].seed)

    warm, *timed = photos(run["size"], run["repeats"] + 1, salt=3)
    warmup_s = seconds(device, naive_replace, warm)
    runs = [seconds(device, naive_replace, rgb) for rgb in timed]
    return {"latency_s": round(statistics.median(runs), 3), "runs_s": [round(r, 3) for r in runs],
            "warmup_s": round(warmup_s, 3), "steps": run["steps"] or 50, "peak_cuda_mb": peak_mb(device)}


def section_batch(run: dict) -> dict:
    device, size = run["device"], run["size"]
    box = coffee_box(photo("coffee", size))
    recipe = {"edits": [{"op": "replace", "box": [box], "prompt": JOB[0].prompt, "seed": 1}]}
    if run["steps"]:
        recipe["steps"] = run["steps"]
    pipe = pipeline(run)
    reset_peak(device)
    pipe.run_many([(rgb, recipe) for rgb in photos(size, 2, salt=4)], batch_size=2)  # warm-up
    out = {}
    for batch_size in BATCH_SIZES:
        reset_peak(device)
        jobs = [(rgb, recipe) for rgb in photos(size, BATCH_PHOTOS, salt=10 + batch_size)]
        results = []
        took = seconds(device, lambda: results.extend(pipe.run_many(jobs, batch_size=batch_size)))
        failed = [repr(r) for r in results if isinstance(r, Exception)]
        if failed:
            raise RuntimeError(f"run_many failed at batch size {batch_size}: {failed[0]}")
        out[str(batch_size)] = {"photos_per_min": round(BATCH_PHOTOS / took * 60, 1), "seconds": round(took, 3),
                                "peak_cuda_mb": peak_mb(device)}
    return {"photos": BATCH_PHOTOS, "batch_size": out}


def section_dtype(run: dict) -> dict:
    """float16 against bfloat16 on a GPU; on the CPU (which has no float16 kernels) float32 against bfloat16."""
    from promptpaint.backends import registry

    out = {}
    for dtype in ("float16" if run["device"] == "cuda" else "float32", "bfloat16"):
        registry.clear_cache()
        reset_peak(run["device"])
        pipe = pipeline(run, dtype=dtype)
        out[dtype] = {**warm_latency(run, pipe, salt=5), "peak_cuda_mb": peak_mb(run["device"])}
        del pipe
    return out


def section_compile(run: dict) -> dict:
    reset_peak(run["device"])
    pipe = pipeline(run, compile=True)
    return {**warm_latency(run, pipe, salt=6), "peak_cuda_mb": peak_mb(run["device"]),
            "note": "warmup_s is the first replace, which compiles the UNet"}


def run_section(name: str, config_path: Path, out_path: Path) -> None:
    run = json.loads(config_path.read_text())
    run["size"] = tuple(run["size"])
    out_path.write_text(json.dumps(globals()[f"section_{name}"](run), indent=1))


# ---------------------------------------------------------------- the parent

def gpu_name(device: str) -> str | None:
    if device != "cuda":
        return None
    import torch

    return torch.cuda.get_device_name()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "section":  # a child: python -m benchmarks.gpu section NAME CONFIG OUT
        run_section(argv[1], Path(argv[2]), Path(argv[3]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--models", choices=["full", "tiny"], default="full")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds for everything (default 450)")
    parser.add_argument("--skip", nargs="*", choices=SECTIONS, default=[], help="sections not to run")
    parser.add_argument("--steps", type=int, default=None,
                        help="denoising steps of every replace (default: each side's and preset's own; the CPU "
                             "check uses 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed replaces per figure; the median is reported")
    parser.add_argument("--cache", type=Path, default=None, help="where models are built (default .cache/)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    deadline = started + args.budget
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    from benchmarks.models import DEFAULT_CACHE, full_folders, tiny_folders

    cache = args.cache or DEFAULT_CACHE
    folders = tiny_folders(cache) if args.models == "tiny" else full_folders(cache, fast=True, log=_say)
    models = {"grounding-dino": str(folders["grounding-dino"]), "sam": str(folders["sam"]),
              "inpainter": str(folders["sd-inpaint"]), "remover": str(folders["lama"]),
              "fast-lora": str(folders["lcm-lora"])}
    report: dict = {"config": {"device": args.device, "models": args.models, "size": "x".join(map(str, SIZE[args.models])),
                               "steps": args.steps, "repeats": args.repeats, "budget_s": args.budget,
                               "command": "python -m benchmarks.gpu " + " ".join(argv)},
                    "build_s": round(time.perf_counter() - started, 1), "sections": {}}
    with tempfile.TemporaryDirectory(prefix="promptpaint-gpu-") as tmp:
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps({"models": models, "device": args.device, "size": SIZE[args.models],
                                           "steps": args.steps, "repeats": args.repeats}))
        for name in SECTIONS:
            if name in args.skip:
                report["sections"][name] = "skipped"
                continue
            report["sections"][name] = _run_child(name, config_path, Path(tmp) / f"{name}.json", deadline)
            _say(f"{name}: {json.dumps(report['sections'][name])}")
    report["ratio"] = ratios(report["sections"])
    report["gpu"] = gpu_name(args.device)
    report["run_s"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    _say(summary(report))
    return 0


def _run_child(name: str, config_path: Path, out_path: Path, deadline: float) -> dict | str:
    left = deadline - time.perf_counter()
    if left < 5:
        return "not run: the time budget was spent"
    _say(f"running {name} (at most {left:.0f} s) ...")
    try:
        process = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "section", name, str(config_path),
                                  str(out_path)], env={**os.environ, **ENV}, capture_output=True, text=True,
                                 timeout=left, cwd=Path(__file__).resolve().parents[1], check=False)
    except subprocess.TimeoutExpired:
        return f"stopped: it overran the time budget ({left:.0f} s were left)"
    if process.returncode != 0:
        return f"failed (exit {process.returncode}): {process.stderr.strip().splitlines()[-1][:300]}"
    return json.loads(out_path.read_text())


def ratios(sections: dict) -> dict:
    """naive / promptpaint latency (same run), and the compile gain."""
    latency, naive, compiled = sections.get("latency"), sections.get("naive"), sections.get("compile")
    out = {}
    if isinstance(latency, dict) and isinstance(naive, dict):
        for preset in ("default", "fast"):
            out[f"naive_over_{preset}"] = round(naive["latency_s"] / latency[preset]["latency_s"], 2)
    if isinstance(latency, dict) and isinstance(compiled, dict):
        out["compile_gain"] = round(latency["default"]["latency_s"] / compiled["latency_s"], 2)
    return out


def summary(report: dict) -> str:
    s, r = report["sections"], report["ratio"]
    lines = [f"GPU: {report['gpu'] or 'none (' + report['config']['device'] + ')'}; {report['config']['models']} models; "
             f"one replace of a {report['config']['size']} photo, warm; run took {report['run_s']} s"]
    if isinstance(s.get("latency"), dict):
        for preset, entry in s["latency"].items():
            lines.append(f"  promptpaint {preset}: {entry['latency_s']} s ({entry['steps']} {entry['scheduler']} steps, "
                         f"{entry['dtype']}), peak {entry['peak_cuda_mb']} MB")
    if isinstance(s.get("naive"), dict):
        lines.append(f"  naive: {s['naive']['latency_s']} s ({s['naive']['steps']} steps, float16 on CUDA), "
                     f"peak {s['naive']['peak_cuda_mb']} MB")
    for key, value in r.items():
        lines.append(f"  {key}: x{value}")
    if isinstance(s.get("batch"), dict):
        lines.append("  photos/min by batch size: " + ", ".join(f"{k}: {v['photos_per_min']}"
                                                            for k, v in s["batch"]["batch_size"].items()))
    if isinstance(s.get("dtype"), dict):
        lines.append("  dtype: " + ", ".join(f"{k} {v['latency_s']} s" for k, v in s["dtype"].items()))
    if isinstance(s.get("compile"), dict):
        lines.append(f"  compile: warm-up {s['compile']['warmup_s']} s, then {s['compile']['latency_s']} s")
    for name, entry in s.items():
        if isinstance(entry, str):
            lines.append(f"  {name}: {entry}")
    return "\n".join(lines)


def _say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
