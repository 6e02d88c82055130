"""Optional speed-ups of the denoising step, each measured on its own, and fast mode's costs.

    python -m benchmarks.speedups --models tiny|full [--device cpu|cuda] [--steps N] --json OUT.json

On promptpaint's loaded SD 1.5 inpainter, on the crop it would generate for the benchmark's first
edit (a replace on the 1024x768 coffee photo: a window of about 512x512 pixels):

- ``deepcache``: feature caching across steps (DeepCache's ``DeepCacheSDHelper``, interval 3, branch 0:
  every third step runs the whole UNet, the others only its outermost blocks on cached deep features);
- ``tomesd``: token merging (``tomesd.apply_patch``, ratio 0.5, the library's defaults otherwise);
- ``lora_adapter``: fast mode's LoRA as an adapter (promptpaint's choice) against fused into the weights;
- ``fast_mode``: one whole edit call, default sampling against fast mode.

Steps are timed between step callbacks (wall and CPU seconds of this process: on a shared machine
the CPU time is the steadier figure); calls at the default step count are projected from them:
fixed part (text encoder, VAE) + steps x one step. Both libraries are optional here; an entry says
so when one is missing or fails on these pipelines.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.ablations import window_job
from benchmarks.job import JOB, photo
from benchmarks.measure import load_average

#: DeepCache's interval and branch (the settings its README shows for Stable Diffusion).
CACHE_INTERVAL, CACHE_BRANCH = 3, 0
#: tomesd's ratio (its README's example; the library's maximum is 0.75).
TOME_RATIO = 0.5


@dataclass
class Steps:
    """One call: its total and the steps after the first (the first includes the call's set-up)."""

    total_wall: float
    total_cpu: float
    wall: list[float]  # step 2, 3, ... (seconds)
    cpu: list[float]

    def step(self, which: slice | list[int] | None = None) -> tuple[float, float]:
        """The median step (wall, CPU), over all timed steps or the chosen ones (0 = step 2)."""
        pick = range(len(self.wall)) if which is None else which
        return statistics.median(self.wall[i] for i in pick), statistics.median(self.cpu[i] for i in pick)

    def fixed(self, steps: int) -> tuple[float, float]:
        """What is not a denoising step: text encoder, VAE encode and decode, set-up."""
        wall, cpu = self.step()
        return max(0.0, self.total_wall - steps * wall), max(0.0, self.total_cpu - steps * cpu)


def timed(model, crop, mask, steps: int, guidance: float | None = None) -> Steps:
    marks: list[tuple[float, float]] = []
    started = (time.perf_counter(), time.process_time())
    model.inpaint([crop], mask, prompt=JOB[0].prompt, negative_prompt="", seeds=[1], steps=steps,
                  guidance=guidance, strength=1.0,
                  progress=lambda i, n, **_: marks.append((time.perf_counter(), time.process_time())))
    ended = (time.perf_counter(), time.process_time())
    gaps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]
    return Steps(ended[0] - started[0], ended[1] - started[1], [g[0] for g in gaps], [g[1] for g in gaps])


def _round(values) -> list[float]:
    return [round(v, 3) for v in values]


def compare(without: str, without_s: tuple[float, float], with_: str, with_s: tuple[float, float], **extra) -> dict:
    """Wall and CPU seconds without and with; ``speedup`` from wall time, ``speedup_cpu`` from CPU time."""
    return {"without": without, "without_s": round(without_s[0], 3), "without_cpu_s": round(without_s[1], 3),
            "with": with_, "with_s": round(with_s[0], 3), "with_cpu_s": round(with_s[1], 3),
            "speedup": round(without_s[0] / with_s[0], 2), "speedup_cpu": round(without_s[1] / with_s[1], 2),
            **extra}


def project(fixed: tuple[float, float], *parts: tuple[int, tuple[float, float]]) -> tuple[float, float]:
    """fixed + sum of count x step, for wall and CPU."""
    return tuple(fixed[k] + sum(count * step[k] for count, step in parts) for k in (0, 1))


def deepcache(model, crop, mask, base: Steps, steps: int, default_steps: int) -> dict | str:
    try:
        from DeepCache import DeepCacheSDHelper
    except ImportError:
        return "not measured: DeepCache is not installed (pip install DeepCache)"
    helper = DeepCacheSDHelper(pipe=model.pipe)
    helper.set_params(cache_interval=CACHE_INTERVAL, cache_branch_id=CACHE_BRANCH)
    helper.enable()
    try:
        cached = timed(model, crop, mask, steps)
    except Exception as error:  # noqa: BLE001 - reported as the library's limit
        return f"fails on this pipeline: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    finally:
        helper.disable()
    # Step k (1-based) runs the whole UNet when (k - 1) % interval == 0; timed steps start at step 2.
    full = [i for i in range(len(cached.wall)) if (i + 1) % CACHE_INTERVAL == 0]
    shallow = [i for i in range(len(cached.wall)) if (i + 1) % CACHE_INTERVAL]
    full_step, shallow_step = cached.step(full), cached.step(shallow)
    n_full = math.ceil(default_steps / CACHE_INTERVAL)
    fixed = base.fixed(steps)
    return compare(f"{default_steps} steps (projected)", project(fixed, (default_steps, base.step())),
                   f"{default_steps} steps, DeepCache interval {CACHE_INTERVAL} (projected)",
                   project(fixed, (n_full, full_step), (default_steps - n_full, shallow_step)),
                   step_s={"plain": _round(base.step()), "full": _round(full_step), "cached": _round(shallow_step)},
                   note="wall, CPU seconds per step; measured over "
                        f"{steps} steps, projected to {default_steps}")


def tomesd(model, crop, mask, base: Steps, steps: int, default_steps: int) -> dict | str:
    try:
        import tomesd as tome
    except ImportError:
        return "not measured: tomesd is not installed (pip install tomesd)"
    try:
        tome.apply_patch(model.pipe, ratio=TOME_RATIO)
        merged = timed(model, crop, mask, steps)
    except Exception as error:  # noqa: BLE001
        return f"fails on this pipeline: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
    finally:
        tome.remove_patch(model.pipe)
    fixed = base.fixed(steps)
    return compare(f"{default_steps} steps (projected)", project(fixed, (default_steps, base.step())),
                   f"{default_steps} steps, ToMe ratio {TOME_RATIO} (projected)",
                   project(fixed, (default_steps, merged.step())),
                   step_s={"plain": _round(base.step()), "merged": _round(merged.step())})


def lora_adapter(fast, crop, mask) -> dict:
    """Fast mode's denoising step with the LoRA as an adapter (extra low-rank products every step)
    and fused into the weights (no extra work, but plain mode could then not compute the base
    model exactly again, or would need a second copy of the weights). Run last: fusing and
    unfusing leave the base weights changed by rounding."""
    steps = fast.default_steps
    adapter = timed(fast, crop, mask, steps)  # leaves fast's adapter active
    base, pipe = fast.base, fast.pipe
    pipe.fuse_lora(adapter_names=[fast.adapter])
    adapters, base._adapters = base._adapters, {}  # call without switching adapters (that would unfuse)
    try:
        fused = timed(_Fused(fast), crop, mask, steps)
    finally:
        base._adapters = adapters
        pipe.unfuse_lora()
    return compare("LoRA as an adapter, one step", adapter.step(), "LoRA fused, one step", fused.step(),
                   steps=steps, note="promptpaint keeps the adapter: see docs/benchmarks.md")


class _Fused:
    """Fast mode's sampler on weights the LoRA is fused into (no adapter switching)."""

    def __init__(self, fast):
        self.fast = fast

    def inpaint(self, images, mask, **kwargs):
        return self.fast.base._generate(self.fast, None, images, mask, previews=0, extra=self.fast.mode.call_kwargs,
                                        **kwargs)


def fast_mode(plain, fast, crop, mask, base: Steps, steps: int) -> dict:
    """One edit's generation: default sampling (projected to its default steps) against fast mode."""
    quick = timed(fast, crop, mask, fast.default_steps)
    return compare(f"{plain.scheduler}, {plain.default_steps} steps, guidance {plain.default_guidance} (projected)",
                   project(base.fixed(steps), (plain.default_steps, base.step())),
                   f"{fast.scheduler}, {fast.default_steps} steps, guidance {fast.default_guidance}",
                   (quick.total_wall, quick.total_cpu),
                   step_s={"default": _round(base.step()), "fast": _round(quick.step())})


def run(models: dict[str, str], device: str, steps: int) -> dict:
    from promptpaint.backends.inpainters import load_inpainter
    from promptpaint.backends.registry import resolve

    plain = load_inpainter(resolve(models["inpainter"]), device, "auto")
    fast = plain.fast(models["fast-lora"])
    size = (1024, 768)
    rgb = photo("coffee", size)
    fx0, fy0, fx1, fy1 = JOB[0].fallback_box
    box = [fx0 * size[0], fy0 * size[1], fx1 * size[0], fy1 * size[1]]
    crop, mask, crop_size = window_job(plain, rgb, box)
    loads = [load_average()]
    timed(plain, crop, mask, 2)  # warm-up: weights paged in, kernels chosen
    base = timed(plain, crop, mask, steps)
    result = {
        "crop": f"{crop_size[0]}x{crop_size[1]}",
        "steps_timed": steps,
        "deepcache": deepcache(plain, crop, mask, base, steps, plain.default_steps),
        "tomesd": tomesd(plain, crop, mask, base, steps, plain.default_steps),
        "fast_mode": fast_mode(plain, fast, crop, mask, base, steps),
        "lora_adapter": lora_adapter(fast, crop, mask),
    }
    result["load_average"] = loads + [load_average()]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speedups", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", choices=["tiny", "full"], required=True)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--steps", type=int, default=7,
                        help="steps per timed call (at least 4: DeepCache's cached and whole steps both get timed)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.steps < 4:
        parser.error("--steps must be at least 4")
    from benchmarks.models import full_folders, tiny_folders

    folders = tiny_folders() if args.models == "tiny" else full_folders(fast=True)
    models = {"inpainter": str(folders["sd-inpaint"]), "fast-lora": str(folders["lcm-lora"])}
    started = time.perf_counter()
    result = run(models, args.device, args.steps)
    result["run_s"] = round(time.perf_counter() - started, 1)
    result["command"] = "python -m benchmarks.speedups " + " ".join(sys.argv[1:] if argv is None else argv)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    for name, entry in result.items():
        print(f"{name}: {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
