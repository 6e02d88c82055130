"""Acceptance with real weights: the README's examples and a fixed set of edits, on a page a person
can judge in a minute.

    python -m benchmarks.acceptance --out DIR [--device auto|cpu|cuda] [--detector M] [--segmenter M]
                                    [--inpainter M] [--remover M] [--steps N] [--scale S] [--only NAME ...]

It needs the default models (online, or in the Hugging Face cache). Every edit runs on one of
scikit-image's bundled photos (CC0, no download) through the public ``Pipeline`` API, as its CLI
command (shown on the page) would. ``DIR/index.html`` shows, for each edit, the original, the
mask over it, the result, the recipe as it ran and the time it took; ``DIR/acceptance.json`` the
same as data. An edit that fails is shown with its one-line error and the others go on.

The model options override the defaults (the test suite runs it with the tiny kit); ``--scale``
resizes every photo (the tests use small ones); ``--box-threshold``/``--text-threshold`` apply to
every edit that detects (random tiny detectors need 0 to find anything).
"""

from __future__ import annotations

import argparse
import html
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class AcceptanceEdit:
    name: str
    source: str  # "README" (its examples, on a bundled photo) or "fixed" (what coarse-to-fine must get right)
    photo: str  # a scikit-image sample
    options: dict[str, Any]  # an edit for Pipeline.edit (with "op"), or {"op": "segment", ...}
    size: tuple[int, int] | None = None  # resize the photo to (w, h) first
    note: str = ""  # what to look for

    @property
    def command(self) -> str:
        """The CLI command that makes the same edit."""
        values = dict(self.options)
        parts = ["promptpaint", values.pop("op"), f"{self.photo}.png"]
        for key, value in values.items():
            for item in value if isinstance(value, list) else [value]:
                parts += [f"--{key.replace('_', '-')}", f'"{item}"' if isinstance(item, str) and " " in item else str(item)]
        return " ".join(parts + ["-o", "out.png"])


EDITS = (
    AcceptanceEdit("replace", "README", "chelsea", {"op": "replace", "find": "cat", "prompt": "a bulldog"},
                   note="a bulldog where the cat was; the background untouched"),
    AcceptanceEdit("new-background", "README", "coffee", {"op": "replace", "keep": "cup", "prompt": "a waterfall"},
                   note="the cup kept exactly, a waterfall around it, no halo at its edge"),
    AcceptanceEdit("remove", "README", "coffee", {"op": "remove", "find": "spoon"},
                   note="no spoon, the saucer continues under it"),
    AcceptanceEdit("outpaint", "README", "astronaut", {"op": "outpaint", "aspect": "16:9", "prompt": "a sunny park"},
                   note="the photo unchanged in the middle, no visible edge where the new sides start"),
    AcceptanceEdit("segment", "README", "chelsea", {"op": "segment", "find": "cat", "exclude": "ear"},
                   note="the cat selected without its ears"),
    AcceptanceEdit("big-new-background", "fixed", "coffee",
                   {"op": "replace", "keep": "cup", "prompt": "a beach at sunset"}, size=(3000, 2000),
                   note="ONE beach and ONE sun (generated once, refined in tiles), no colour step at the cup"),
    AcceptanceEdit("big-keep-person", "fixed", "astronaut",
                   {"op": "replace", "keep": "person", "prompt": "the surface of the moon, black sky"},
                   size=(2048, 2048), note="one horizon, one coherent ground; the astronaut untouched"),
    # "sd15" stands for the diffusion inpainter in use (--inpainter)
    AcceptanceEdit("remove-by-diffusion", "fixed", "rocket", {"op": "remove", "find": "tower", "remover": "sd15"},
                   note="the towers gone, sky and trees continue; no colour patch where they were"),
    AcceptanceEdit("small-object", "fixed", "astronaut", {"op": "replace", "find": "flag", "prompt": "a red rose"},
                   note="a sharp rose (a small window is generated at the model's full size)"),
    AcceptanceEdit("outpaint-sky", "fixed", "rocket",
                   {"op": "outpaint", "expand": "0,200,0,0", "prompt": "a clear evening sky"},
                   note="the sky continues upward with no line or tone change at the old top edge"),
)


@dataclass
class Outcome:
    edit: AcceptanceEdit
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)
    recipe: dict | None = None
    calls: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def photo(name: str, size: tuple[int, int] | None, scale: float) -> np.ndarray:
    import cv2
    import skimage.data

    rgb = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    w, h = size or (rgb.shape[1], rgb.shape[0])
    w, h = max(16, int(round(w * scale))), max(16, int(round(h * scale)))
    if (w, h) == (rgb.shape[1], rgb.shape[0]):
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if w < rgb.shape[1] else cv2.INTER_LANCZOS4)


def run_one(pipe, edit: AcceptanceEdit, folder: Path, overrides: dict[str, Any], scale: float) -> Outcome:
    from promptpaint.core.annotate import overlay
    from promptpaint.core.images import save_image
    from promptpaint.errors import PromptPaintError

    outcome = Outcome(edit)
    rgb = photo(edit.photo, edit.size, scale)
    folder.mkdir(parents=True, exist_ok=True)
    save_image(folder / "original.jpg", rgb)
    outcome.files["original"] = "original.jpg"
    options = {**edit.options, **overrides}
    if options.get("remover") == "sd15":  # "remove with the diffusion model": the one in use
        options["remover"] = pipe.models.inpainter
    if options["op"] == "outpaint":  # it selects nothing: no detection thresholds
        options = {k: v for k, v in options.items() if k not in ("box_threshold", "text_threshold")}
    started = time.perf_counter()
    try:
        if options["op"] == "segment":
            seg = pipe.segment(rgb, **{k: v for k, v in options.items() if k not in ("op", "steps", "seed")})
            outcome.seconds = time.perf_counter() - started
            save_image(folder / "overlay.jpg", overlay(rgb, seg.detections, seg.mask, seg.excluded))
            outcome.files["overlay"] = "overlay.jpg"
            return outcome
        result = pipe.edit(rgb, options)
    except PromptPaintError as error:
        outcome.seconds = time.perf_counter() - started
        outcome.error = str(error)
        return outcome
    outcome.seconds = time.perf_counter() - started
    shown = rgb if result.mask.shape == rgb.shape[:2] else result.image  # outpaint: the mask is on the canvas
    save_image(folder / "overlay.jpg", overlay(shown, mask=result.mask))
    save_image(folder / "result.png", result.image)
    outcome.files.update(overlay="overlay.jpg", result="result.png")
    outcome.recipe = result.recipe
    outcome.calls = dict(Counter(getattr(job, "role", "generate") for job in result.windows))
    (folder / "recipe.json").write_text(json.dumps(result.recipe, indent=1))
    return outcome


def write_page(out: Path, outcomes: list[Outcome], header: dict[str, Any]) -> Path:
    """``out/index.html``: one row per edit, images side by side, recipe folded away."""
    rows = []
    for i, o in enumerate(outcomes):
        folder = f"{i:02d}-{o.edit.name}"
        cells = "".join(f'<td><a href="{folder}/{o.files[k]}"><img src="{folder}/{o.files[k]}" alt="{k}"></a></td>'
                        if k in o.files else "<td></td>" for k in ("original", "overlay", "result"))
        calls = ", ".join(f"{n} {role}" for role, n in sorted(o.calls.items()))
        status = (f'<p class="error">error: {html.escape(o.error)}</p>' if o.error else
                  f"<p>{o.seconds:.1f} s{' &middot; model calls: ' + calls if calls else ''}</p>")
        recipe = (f"<details><summary>recipe</summary><pre>{html.escape(json.dumps(o.recipe, indent=1))}</pre>"
                  f"</details>" if o.recipe else "")
        rows.append(f'<tr><td class="about"><h2>{html.escape(o.edit.name)} <small>({o.edit.source})</small></h2>'
                    f"<code>{html.escape(o.edit.command)}</code><p>Look for: {html.escape(o.edit.note)}</p>"
                    f"{status}{recipe}</td>{cells}</tr>")
    meta = " &middot; ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in header.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>promptpaint acceptance</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; }} td {{ vertical-align: top; padding: 6px; border-top: 1px solid #ccc; }}
img {{ width: 300px; }} .about {{ width: 330px; }} code {{ font-size: 12px; word-break: break-word; }}
h2 {{ font-size: 16px; margin: 0 0 4px; }} .error {{ color: #b00; }} pre {{ font-size: 11px; }}
</style></head><body>
<h1>promptpaint acceptance</h1><p>{meta}</p>
<table><tr><th>edit</th><th>original</th><th>selection</th><th>result</th></tr>
{"".join(rows)}
</table></body></html>
"""
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.acceptance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for index.html and the images")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    for role in ("detector", "segmenter", "inpainter", "remover"):
        parser.add_argument(f"--{role}", default=None, help=f"{role} instead of the default")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps for every diffusion edit")
    parser.add_argument("--box-threshold", type=float, default=None)
    parser.add_argument("--text-threshold", type=float, default=None)
    parser.add_argument("--scale", type=float, default=1.0, help="resize every photo by this factor")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=None, choices=[e.name for e in EDITS], help="run only these edits")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from promptpaint.errors import PromptPaintError
    from promptpaint.pipeline.pipeline import Pipeline

    models = {role: getattr(args, role) for role in ("detector", "segmenter", "inpainter", "remover", "device")}
    overrides = {k: v for k, v in {"steps": args.steps, "box_threshold": args.box_threshold,
                                   "text_threshold": args.text_threshold, "seed": args.seed}.items() if v is not None}
    edits = [e for e in EDITS if args.only is None or e.name in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        pipe = Pipeline(**{k: v for k, v in models.items() if v is not None})
        started = time.perf_counter()
        for load in (pipe.detector, pipe.segmenter, pipe.inpainter, pipe.remover):
            load()  # every model here before the first edit (and its load time apart from the edits')
        loaded = time.perf_counter() - started
    except PromptPaintError as error:
        print(f"error: the acceptance needs its models (online or in the Hugging Face cache): {error}", file=sys.stderr)
        return error.exit_code
    outcomes = []
    for i, edit in enumerate(edits):
        outcome = run_one(pipe, edit, args.out / f"{i:02d}-{edit.name}", overrides, args.scale)
        outcomes.append(outcome)
        print(f"{edit.name:20s} {'error: ' + outcome.error if outcome.error else f'{outcome.seconds:.1f} s'}")
    header = {"models": ", ".join(f"{role} {getattr(pipe.models, role)}" for role in
                                  ("detector", "segmenter", "inpainter", "remover")),
              "device": pipe.device, "models loaded in": f"{loaded:.1f} s", "seed": args.seed,
              "steps": args.steps or "model default", "scale": args.scale}
    page = write_page(args.out, outcomes, header)
    (args.out / "acceptance.json").write_text(json.dumps(
        {"header": header, "edits": [{"name": o.edit.name, "source": o.edit.source, "command": o.edit.command,
                                      "seconds": round(o.seconds, 2), "calls": o.calls, "error": o.error,
                                      "files": o.files, "recipe": o.recipe} for o in outcomes]}, indent=1))
    print(f"wrote {page}")
    return 1 if any(o.error for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
