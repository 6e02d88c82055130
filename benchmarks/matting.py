"""Matting benchmark: a cut-out's alpha with ViTMatte-S on a photo, stage by stage.

    python -m benchmarks.matting --models tiny|full [--device cpu|cuda] [--size 1024x768] [--json OUT.json]

promptpaint's route (``Pipeline.cutout`` with the mask: trimap, ViTMatte in windows around the
unknown band at the photo's own resolution, alpha assembly, foreground colours) beside the documented one
(transformers' processor and model on the whole photo at once, as the model card shows). The subject
is an ellipse over the middle of scikit-image's ``coffee``: the figures do not depend on the
weights' values, only on the architecture and the band's size. ``--models full`` builds ViTMatte-S
with random weights once (see :mod:`benchmarks.models`).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks.job import photo
from benchmarks.measure import Stopwatch, load_average, peak_rss_mb
from benchmarks.models import DEFAULT_CACHE, tiny_folders, vitmatte_folder

#: ``matte``: the matting model's windows; ``foreground``: the colours in the band; ``total``: the
#: whole ``Pipeline.cutout`` call, whose rest (trimap, alpha assembly) is ``other``
STAGES = ("matte", "foreground", "other", "total")


def subject_mask(size: tuple[int, int]) -> np.ndarray:
    """An ellipse over the middle 60% x 80% of the photo, as a segmenter's mask of a subject."""
    width, height = size
    ys, xs = np.mgrid[:height, :width]
    return ((xs - width / 2) / (0.3 * width)) ** 2 + ((ys - height / 2) / (0.4 * height)) ** 2 <= 1


def promptpaint_route(pipe, rgb: np.ndarray, mask: np.ndarray, watch: Stopwatch):
    """One cut-out through the public API; returns its trimap (for the documented route)."""
    from promptpaint.core import alpha as A

    watch.time("total", pipe.cutout, rgb, mask=mask)
    watch.seconds["other"] = watch.seconds["total"] - watch.seconds["matte"] - watch.seconds["foreground"]
    band = A.band_width((rgb.shape[1], rgb.shape[0]))
    return A.make_trimap(mask, band, band)


def documented_route(matter, rgb: np.ndarray, trimap: np.ndarray, watch: Stopwatch) -> None:
    """The model card's usage on the whole photo: PIL images through the processor, one forward."""
    import torch
    from PIL import Image

    with watch.stage("documented"):
        inputs = matter.processor(images=Image.fromarray(rgb), trimaps=Image.fromarray(trimap), return_tensors="pt")
        with torch.no_grad():
            matter.model(**{k: v.to(matter.device) for k, v in inputs.items()})


def run(args: argparse.Namespace) -> dict:
    from promptpaint.core import alpha as A
    from promptpaint.pipeline.pipeline import Pipeline

    folder = tiny_folders(args.cache)["vitmatte"] if args.models == "tiny" else vitmatte_folder(args.cache)
    pipe = Pipeline(matting=str(folder), device=args.device)
    started = time.perf_counter()
    matter = pipe.matting()
    load_s = time.perf_counter() - started
    rgb = photo("coffee", args.size)
    mask = subject_mask(args.size)
    pipe.cutout(rgb[:256, :256], mask=mask[:256, :256])  # the first forward pays one-off costs (allocations)
    watch = Stopwatch(args.device)
    watch.wrap(matter, "matte", "matte")
    watch.wrap(A, "recolour_band", "foreground")  # the module function cutout calls
    trimap = promptpaint_route(pipe, rgb, mask, watch)
    windows = A.matting_windows(trimap == A.UNKNOWN, matter.window, matter.overlap, matter.context, matter.multiple)
    if not args.skip_documented:
        documented_route(matter, rgb, trimap, watch)
    figures = {stage: watch.get(stage) for stage in (*STAGES, "documented")}
    return {
        "models": args.models, "device": args.device, "size": list(args.size),
        "load_s": round(load_s, 3), **{f"{k}_s": v for k, v in figures.items()},
        "cpu_s": {k: round(v, 3) for k, v in watch.cpu_seconds.items()},
        "windows": len(windows), "window_pixels": sum(w.width * w.height for w in windows),
        "photo_pixels": args.size[0] * args.size[1], "band_pixels": int((trimap == A.UNKNOWN).sum()),
        "peak_rss_mb": peak_rss_mb(), "load_average": load_average(),
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.matting", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", choices=["tiny", "full"], required=True)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--size", default="1024x768", help="photo size WxH (default 1024x768)")
    parser.add_argument("--skip-documented", action="store_true",
                        help="do not run the whole-photo route (its global attention grows with the square "
                             "of the pixel count: tens of GB above ~8 megapixels)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    args.size = tuple(int(v) for v in args.size.lower().split("x"))
    report = run(args)
    print(f"matting {args.models} {args.size[0]}x{args.size[1]} on {args.device}: "
          f"{report['windows']} window(s), {report['window_pixels'] / report['photo_pixels']:.0%} of the photo")
    for stage in ("load", *STAGES, "documented"):
        print(f"  {stage:<11} {report[f'{stage}_s']:8.3f} s")
    print(f"  peak RSS {report['peak_rss_mb']:.0f} MB, load average {report['load_average']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
