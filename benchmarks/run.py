"""promptpaint against the naive pipeline, side by side, per stage.

    python -m benchmarks.run --models tiny|full --device cpu|cuda [--preset default|fast] [--steps N]
                             [--size WxH] [--batch N] [--ablate] [--sdxl] [--compile] [--offload] --json OUT.json

Each side runs in a process of its own (promptpaint first: the naive side reuses the boxes it chose),
so that load times, peak RSS and peak GPU memory are each side's own; ``--ablate`` adds a third
process that measures the speed-ups one by one. See docs/benchmarks.md for the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from benchmarks.job import PHOTOS, SideConfig, photo
from benchmarks.models import DEFAULT_CACHE, full_folders, tiny_folders

STAGES = ("detect", "segment", "inpaint", "total")
CHILD_ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
             "DIFFUSERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", choices=["tiny", "full"], required=True,
                        help="tiny: the test kit (seconds); full: full-size architectures, random weights")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--preset", choices=["default", "fast"], default="default",
                        help="promptpaint's sampling: default (DPM++ 2M Karras, 25 steps) or fast (its distillation "
                             "LoRA: LCM, 4 steps for SD 1.5; TCD, 8 steps for SDXL)")
    parser.add_argument("--steps", type=int, default=None,
                        help="denoising steps for BOTH sides (default: each side's own: naive 50, promptpaint 25)")
    parser.add_argument("--size", default=None,
                        help="photo size WxH (default: 1024x768 for full models; 256x192 for tiny ones, whose "
                             "64-px inpainter would repaint a large photo in dozens of tiles)")
    parser.add_argument("--batch", type=int, default=0, help="also edit a batch of N photos (default: none)")
    parser.add_argument("--ablate", action="store_true", help="also measure each speed-up on its own")
    parser.add_argument("--sdxl", action="store_true",
                        help="SDXL inpainting instead of SD 1.5 (2.6B-parameter UNet; ~14 GB built once)")
    parser.add_argument("--warmup", action="store_true",
                        help="run the job once on another photo before timing, on both sides (a warm server; "
                             "use on a GPU; implied by --compile)")
    parser.add_argument("--compile", action="store_true",
                        help="promptpaint: torch.compile the UNet (its cost shows in promptpaint's warmup_s)")
    parser.add_argument("--offload", action="store_true",
                        help="promptpaint: offload diffusion models to the CPU between calls (CUDA)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where models are built (default .cache/)")
    parser.add_argument("--outputs", type=Path, default=None, help="keep the edited images in this folder")
    parser.add_argument("--json", type=Path, required=True, help="write the figures here")
    args = parser.parse_args(argv)
    args.size = args.size or ("1024x768" if args.models == "full" else "256x192")
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size must look like 1024x768, got {args.size!r}")
    if min(w, h) < 64 or (args.steps is not None and args.steps < 1) or args.batch < 0:
        parser.error("--size sides must be >= 64, --steps >= 1, --batch >= 0")
    args.size = (w, h)
    return args


def prepare_models(args: argparse.Namespace) -> dict[str, str]:
    fast = args.preset == "fast"
    if args.models == "tiny":
        folders = tiny_folders(args.cache)
    else:
        folders = full_folders(args.cache, sdxl=args.sdxl, fast=fast, log=lambda line: print(line, flush=True))
    inpainter = "sdxl-inpaint" if args.sdxl else "sd-inpaint"
    lora = "tcd-lora-sdxl" if args.sdxl else "lcm-lora"
    _read_into_page_cache([folders["grounding-dino"], folders["sam"], folders[inpainter], folders["lama"],
                           *([folders[lora]] if fast else [])])
    models = {"grounding-dino": str(folders["grounding-dino"]), "sam": str(folders["sam"]),
              "inpainter": str(folders[inpainter]), "remover": str(folders["lama"])}
    if fast:
        models["fast-lora"] = str(folders[lora])
    return models


def _read_into_page_cache(folders: list[Path]) -> None:
    """Read every model file once, so that neither side's load time depends on which ran first."""
    for folder in folders:
        for file in Path(folder).rglob("*"):
            if file.is_file():
                with open(file, "rb") as stream:
                    while stream.read(1 << 24):
                        pass


def write_photos(args: argparse.Namespace, folder: Path) -> tuple[str, list[str]]:
    """The job's photo as PNG (lossless) and the batch as JPEG files, all at ``--size``."""
    from PIL import Image

    single = folder / "photo.png"
    Image.fromarray(photo("coffee", args.size)).save(single)
    batch = []
    for i in range(args.batch or (2 if args.ablate else 0)):
        path = folder / f"batch-{i}.jpg"
        Image.fromarray(photo(PHOTOS[i % len(PHOTOS)], args.size)).save(path, quality=95)
        batch.append(str(path))
    return str(single), batch


def run_side(module: str, config: SideConfig, workdir: Path) -> dict:
    """Run ``python -m benchmarks.<module>`` on ``config``; return its result."""
    config_path, result_path = workdir / f"{module}.config.json", workdir / f"{module}.result.json"
    config.save(config_path)
    started = time.perf_counter()
    print(f"running {module} ...", flush=True)
    process = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", str(config_path), str(result_path)],
                             env={**os.environ, **CHILD_ENV}, check=False, capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[1])
    if process.returncode != 0:
        sys.stderr.write(process.stderr[-4000:])
        raise SystemExit(f"benchmarks.{module} failed (exit {process.returncode})")
    print(f"  {module} done in {time.perf_counter() - started:.0f} s", flush=True)
    return json.loads(result_path.read_text())


def compare(naive: dict, ours: dict) -> dict:
    """naive / promptpaint per stage (and per batch photo); ``other_s`` is total minus the stages."""
    for side in (naive, ours):
        side["other_s"] = round(side["total_s"] - side["detect_s"] - side["segment_s"] - side["inpaint_s"], 3)
    ratio = {stage: _ratio(naive[f"{stage}_s"], ours[f"{stage}_s"]) for stage in (*STAGES, "first_edit")}
    ratio["cpu"] = {stage: _ratio(naive["cpu_s"][stage], ours["cpu_s"][stage]) for stage in STAGES}
    if "batch" in naive and "batch" in ours:
        ratio["batch_per_photo"] = _ratio(naive["batch"]["per_photo_s"], ours["batch"]["per_photo_s"])
    return ratio


def project_default_steps(naive: dict, ours: dict) -> dict | None:
    """With ``--steps N`` on a CPU: each side's total had it run its own default step count, from the
    denoising step it timed: total + model calls x (default - N) x one step."""
    if naive["steps"] == naive["default_steps"] and ours["steps"] == ours["default_steps"]:
        return None  # the run already used the defaults
    if not (naive.get("step_s") and ours.get("step_s")):
        return None
    totals = {name: round(side["total_s"] + _diffusion_calls(side) * (side["default_steps"] - side["steps"])
                          * side["step_s"], 1) for name, side in (("naive", naive), ("promptpaint", ours))}
    return {"naive_total_s": totals["naive"], "promptpaint_total_s": totals["promptpaint"],
            "ratio": _ratio(totals["naive"], totals["promptpaint"]), "preset": ours.get("preset", "default"),
            "steps": {"naive": naive["default_steps"], "promptpaint": ours["default_steps"]},
            "step_s": {"naive": naive["step_s"], "promptpaint": ours["step_s"]}}


#: Regression guards, printed with every run (targets, not timed tests): (name, where in the
#: report, at least, when it applies).
CHECKS = (
    ("segment stage", ("ratio", "segment"), 2.5, lambda report: True),
    ("total at the same steps", ("ratio", "total"), 1.6, lambda report: report["config"]["steps"] is not None),
    ("total projected at default steps, fast preset", ("projected_default_steps", "ratio"), 8.0,
     lambda report: report["config"]["preset"] == "fast" and "projected_default_steps" in report),
)


def checks(report: dict) -> list[dict]:
    """Each guard that applies to this run: its figure, its target and whether it is met."""
    out = []
    for name, (section, key), target, applies in CHECKS:
        if applies(report):
            value = report.get(section, {}).get(key)
            out.append({"name": name, "value": value, "at_least": target, "ok": value is not None and value >= target})
    return out


def _diffusion_calls(side: dict) -> int:
    """Model calls that take denoising steps (promptpaint removes with LaMa: one pass, no steps)."""
    return side.get("diffusion_calls", side["calls"]["inpaint"])


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def machine(device: str, ours: dict) -> dict:
    info = {"cpu": _cpu_name(), "cores": os.cpu_count(),
            "memory_gib": _memory_gib(), "python": platform.python_version(), "gpu": ours.get("gpu")}
    for package in ("torch", "transformers", "diffusers", "promptpaint"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def table(report: dict) -> str:
    """A readable side-by-side table of the report."""
    naive, ours, ratio = report["naive"], report["promptpaint"], report["ratio"]
    cfg = report["config"]
    steps = f"{cfg['steps']} steps on both sides" if cfg["steps"] else \
        f"default steps (naive {naive['steps']}, promptpaint {ours['steps']})"
    lines = [f"promptpaint ({cfg['preset']} preset: {ours['scheduler']}, guidance {ours['guidance']}) vs naive: "
             f"{cfg['models']} models, {cfg['device']}, {cfg['size']}, {steps}",
             f"{'':<30}{'naive':>12}{'promptpaint':>14}{'naive/pp':>10}"]

    def row(name: str, a, b, r="") -> None:
        lines.append(f"{name:<30}{_fmt(a):>12}{_fmt(b):>14}{_fmt(r):>10}")

    row("load (s)", naive["load_s"], ours["load_s"])
    if "warmup_s" in ours:
        row("warm-up run (s)", naive.get("warmup_s"), ours["warmup_s"])
    for stage in ("detect", "segment", "inpaint"):
        calls = f"{stage} (s) [{naive['calls'][stage]} vs {ours['calls'][stage]} calls]"
        row(calls, naive[f"{stage}_s"], ours[f"{stage}_s"], ratio[stage])
    row("other (s)", naive["other_s"], ours["other_s"])
    row("total, excl. load (s)", naive["total_s"], ours["total_s"], ratio["total"])
    row("total CPU time (s)", naive["cpu_s"]["total"], ours["cpu_s"]["total"], ratio["cpu"]["total"])
    row("first edit, end to end (s)", naive["first_edit_s"], ours["first_edit_s"], ratio["first_edit"])
    row("peak RSS (MB)", naive["peak_rss_mb"], ours["peak_rss_mb"])
    if cfg["device"] == "cuda":
        row("peak CUDA (MB)", naive["peak_cuda_mb"], ours["peak_cuda_mb"])
    row("changed outside edit", naive["changed_outside_share"], ours["changed_outside_share"])
    row("edited share", naive["edited_share"], ours["edited_share"])
    if "batch" in ours:
        row(f"batch of {ours['batch']['photos']}: s/photo", naive["batch"]["per_photo_s"],
            ours["batch"]["per_photo_s"], ratio.get("batch_per_photo"))
    lines.append(f"promptpaint removes with {ours['remover']}: {ours['remove_s']} s of its inpaint; "
                 "naive removes with SD")
    lines.append(f"boxes: {report['boxes']['source']}; naive safety checker {naive['safety_checker_s']} s "
                 f"(in its inpaint); run took {report['run_s']:.0f} s")
    lines.append(f"1-min load average at start/end of the timed job (cores: {report['machine']['cores']}): "
                 f"naive {naive['load_average']}, promptpaint {ours['load_average']}")
    projection = report.get("projected_default_steps")
    if projection:
        lines.append(f"projected at default steps (naive {projection['steps']['naive']}, promptpaint "
                     f"{projection['steps']['promptpaint']}; one step: {projection['step_s']}): total "
                     f"{projection['naive_total_s']} s vs {projection['promptpaint_total_s']} s, "
                     f"x{projection['ratio']}")
    for name, entry in report.get("ablations", {}).items():
        lines.append(f"ablation {name}: {_describe(entry)}")
    for check in report.get("checks", []):
        lines.append(f"check {check['name']} >= {check['at_least']}x: {_fmt(check['value'])}x "
                     f"{'ok' if check['ok'] else 'MISSED'}")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _describe(entry) -> str:
    if not isinstance(entry, dict):
        return str(entry)
    if "speedup" in entry:
        return (f"{entry['without']} {entry['without_s']} s -> {entry['with']} {entry['with_s']} s "
                f"(x{entry['speedup']})")
    return ", ".join(f"{k}={v}" for k, v in entry.items())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    for key, value in CHILD_ENV.items():
        os.environ.setdefault(key, value)
    models = prepare_models(args)
    with tempfile.TemporaryDirectory(prefix="promptpaint-bench-") as tmp:
        workdir = Path(tmp)
        outputs = args.outputs or workdir / "outputs"
        outputs.mkdir(parents=True, exist_ok=True)
        single, batch = write_photos(args, workdir)
        config = SideConfig(device=args.device, models=models, photo=single, batch=batch[:args.batch],
                            out_dir=str(outputs), steps=args.steps, warmup=args.warmup or args.compile,
                            compile=args.compile, offload=args.offload, sdxl=args.sdxl, preset=args.preset)
        ours = run_side("promptpaint_side", config, workdir)
        config.boxes = {single: ours.pop("boxes"), **ours.pop("batch_boxes", {})}
        config.compile = config.offload = False  # options of promptpaint's, not of the naive code
        config.preset = "default"
        naive = run_side("naive", config, workdir)
        ablations = None
        if args.ablate:
            config.batch, config.compile, config.offload = batch, args.compile, args.offload
            ablations = run_side("ablations", config, workdir)
    command = "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv)
    report = {
        "config": {"models": args.models, "device": args.device, "size": f"{args.size[0]}x{args.size[1]}",
                   "preset": args.preset, "steps": args.steps, "batch": args.batch, "sdxl": args.sdxl, "compile": args.compile,
                   "warmup": config.warmup, "offload": args.offload, "command": command},
        "naive": naive,
        "promptpaint": ours,
        "ratio": compare(naive, ours),
        "boxes": {"xyxy": config.boxes[single], "source": ours.pop("box_sources")},
    }
    projection = project_default_steps(naive, ours)
    if projection:
        report["projected_default_steps"] = projection
    if ablations is not None:
        report["ablations"] = ablations
    report["checks"] = checks(report)
    report["machine"] = machine(args.device, ours)
    report["run_s"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
