"""Seams, coherence and fidelity of promptpaint's edits, measured with oracle inpainters (no weights).

    python -m benchmarks.quality [--json OUT] [--quick]

- **Seam**: :class:`~benchmarks.oracles.SeamOracle` paints new texture and drifts the colours of the
  whole crop, as a VAE does. The seam score is the mean gradient magnitude of the result across the
  effective mask's boundary (the pixels within 2 px of it, either side), divided by the original photo's
  in the same band: 1 means the edit's edge is as smooth as the photo there. Measured with and
  without colour matching, on four of scikit-image's photos and three mask shapes (object,
  background, thin, and the new area of an outpaint, whose edge is hard). Targets: worst matched
  score <= 1.25, and at least 2x lower than unmatched.
- **Coherence**: :class:`~benchmarks.oracles.CoherenceOracle` draws one sun per full-strength
  generation. "Keep the subject, new background" on a 4000x3000 photo must show exactly one sun.
- **Fidelity**: no pixel outside the effective mask changes; the output has the input's size.

Every case reports its model calls and generated pixels. The edits run the production code path:
the Pipeline and its operations (``replace``, ``replace --keep``, ``remove``, ``outpaint``, with
their own dilation, feathering, crop-and-stitch, pre-fill, colour matching and blending), with the
oracle given in place of the diffusion model (``Pipeline(inpainter=oracle)``). The JSON has
``seam`` (``matched``/``unmatched``: worst over the cases), ``coherence`` (``suns``),
``changed_outside`` (total over all cases) and ``cases`` (the detail). Exit status 1 when a target
is missed. See docs/quality.md for a full run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.oracles import CoherenceOracle, SeamOracle, SubjectFinder, count_suns
from promptpaint.core import masks as M

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
SHAPES = ("object", "background", "thin", "outpaint")
#: the edit each shape stands for: replace an object, keep a subject and repaint the background,
#: remove a wire with a diffusion model (pre-filled), widen the photo by a quarter (pre-filled)
OPERATIONS = {"object": "replace", "background": "keep", "thin": "remove", "outpaint": "outpaint"}
OUTPAINT_SHARE = 0.25  # of the photo's width, added on the right
COHERENCE_SIZE = (4000, 3000)
TARGETS = {"seam_matched_max": 1.25, "seam_improvement_min": 2.0, "suns": 1, "changed_outside": 0}


# ------------------------------------------------------------------------------------ inputs
def photo(name: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """One of scikit-image's bundled photos (no download), RGB, optionally resized to ``size`` (w, h)."""
    import skimage.data

    rgb = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    if size is None or (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_LANCZOS4 if size[0] > rgb.shape[1] else cv2.INTER_AREA)


def shape_mask(shape: str, size: tuple[int, int]) -> np.ndarray:
    """The selection for a mask shape: an object, a subject whose background is repainted, a wire,
    or (outpaint) the new area of the widened canvas, for a photo of ``size`` (w, h)."""
    w, h = size
    if shape == "outpaint":
        mask = np.ones((h, w + int(w * OUTPAINT_SHARE)), bool)
        mask[:, :w] = False
        return mask
    mask = np.zeros((h, w), np.uint8)
    if shape == "object":
        cv2.ellipse(mask, (w // 2, int(h * 0.55)), (int(w * 0.16), int(h * 0.2)), 15, 0, 360, 1, -1)
    elif shape == "background":  # the subject: kept
        cv2.ellipse(mask, (w // 2, h // 2), (int(w * 0.22), int(h * 0.32)), 0, 0, 360, 1, -1)
    elif shape == "thin":
        xs = np.linspace(0.05 * w, 0.95 * w, 64)
        ys = h * (0.45 + 0.2 * np.sin(xs / w * 2 * np.pi))
        cv2.polylines(mask, [np.column_stack([xs, ys]).astype(np.int32)], False, 1, thickness=max(3, w // 150))
    else:
        raise ValueError(shape)
    return mask.astype(bool)


def starting_image(shape: str, rgb: np.ndarray) -> np.ndarray:
    """What the edit starts from: the photo, or for outpaint the widened canvas with the photo
    mirrored into the new area (as the outpaint operation does)."""
    if shape != "outpaint":
        return rgb
    return cv2.copyMakeBorder(rgb, 0, 0, 0, int(rgb.shape[1] * OUTPAINT_SHARE), cv2.BORDER_REFLECT_101)


# ------------------------------------------------------------------------------------ the edit
@dataclass
class Ran:
    image: np.ndarray
    mask: np.ndarray  # the effective mask: where pixels may differ
    calls: dict[str, int]
    generated_pixels: int
    seconds: float
    recipe: dict


def run_edit(shape: str, rgb: np.ndarray, selection: np.ndarray, model, *, prompt: str, seed: int,
             **options) -> Ran:
    """The edit a mask shape stands for, through the Pipeline and its operation, with ``model`` (an
    oracle) as the diffusion model: replace the object, keep the subject, remove the wire with a
    diffusion model, or outpaint. The pre-fill is Telea (LaMa's weights are not here)."""
    from promptpaint.pipeline.pipeline import Pipeline

    op = OPERATIONS[shape]
    started = time.perf_counter()
    if op == "replace":
        result = Pipeline(inpainter=model, device="cpu").replace(rgb, mask=selection, prompt=prompt, seed=seed,
                                                                 **options)
    elif op == "keep":
        pipe = Pipeline(inpainter=model, segmenter=SubjectFinder(selection), device="cpu")
        result = pipe.replace(rgb, keep="subject", prompt=prompt, seed=seed, **options)
    elif op == "remove":
        result = Pipeline(remover=model, device="cpu").remove(rgb, mask=selection, prompt=prompt, seed=seed,
                                                              prefill="telea", **options)
    else:
        extra = selection.shape[1] - rgb.shape[1]
        result = Pipeline(inpainter=model, device="cpu").outpaint(rgb, expand=f"0,0,{extra},0", prompt=prompt,
                                                                  seed=seed, prefill="telea", **options)
    calls = {"prefill": 0, "generate": 0, "refine": 0}
    for window in result.windows:
        calls[window.role] += 1
    pixels = sum(w.model_size[0] * w.model_size[1] for w in result.windows)
    return Ran(result.image, result.mask, calls, pixels, time.perf_counter() - started, result.recipe)


# ------------------------------------------------------------------------------------ measures
def gradient_magnitude(rgb: np.ndarray) -> np.ndarray:
    """Per pixel, the length of the colour gradient (central differences, all channels)."""
    image = rgb.astype(np.float32)
    gy, gx = np.gradient(image, axis=(0, 1))
    return np.sqrt((gx ** 2 + gy ** 2).sum(axis=-1))


def seam_band(weights: np.ndarray, reach: int = 2) -> np.ndarray:
    """The pixels within ``reach`` of the effective mask's boundary (``weights > 0`` beside
    ``weights == 0``), on either side."""
    edit = weights > 0
    edge = (edit & ~M.erode(edit, 1)) | (~edit & M.dilate(edit, 1))
    return M.dilate(edge, reach)


def seam_score(original: np.ndarray, result: np.ndarray, weights: np.ndarray) -> float:
    band = seam_band(weights)
    return float(gradient_magnitude(result)[band].mean() / gradient_magnitude(original)[band].mean())


def changed_outside(original: np.ndarray, result: np.ndarray, weights: np.ndarray) -> int:
    """Pixels that differ where the edit's weight (or effective mask) is 0."""
    return int(((original != result).any(axis=-1) & (np.asarray(weights) == 0)).sum())


# ------------------------------------------------------------------------------------ cases
def seam_case(name: str, shape: str, seed: int = 1, drift: float = 1.0, outputs: Path | None = None) -> dict:
    rgb = photo(name)
    selection = shape_mask(shape, (rgb.shape[1], rgb.shape[0]))
    start = starting_image(shape, rgb)  # what the edit starts from: the photo (outpaint: mirrored wider)
    case = {"photo": name, "shape": shape, "operation": OPERATIONS[shape], "size": [start.shape[1], start.shape[0]]}
    changed, size_ok = 0, True
    for matched in (True, False):
        ran = run_edit(shape, rgb, selection, SeamOracle(drift), prompt="something new", seed=seed,
                       no_color_match=not matched)
        weights = ran.mask.astype(np.float32)
        key = "matched" if matched else "unmatched"
        case[f"seam_{key}"] = round(seam_score(start, ran.image, weights), 4)
        changed += changed_outside(start, ran.image, weights)
        size_ok &= ran.image.shape == start.shape
        if outputs is not None:
            cv2.imwrite(str(outputs / f"seam-{name}-{shape}-{key}.png"), cv2.cvtColor(ran.image, cv2.COLOR_RGB2BGR))
        if matched:
            case.update(calls=ran.calls, generated_pixels=ran.generated_pixels, seconds=round(ran.seconds, 3))
    case.update(changed_outside=changed, size_ok=size_ok)
    return case


def coherence_case(size: tuple[int, int] = COHERENCE_SIZE, seed: int = 1, outputs: Path | None = None) -> dict:
    rgb = photo("coffee", size)
    ran = run_edit("background", rgb, shape_mask("background", size), CoherenceOracle(), prompt="a beach at sunset",
                   seed=seed)
    if outputs is not None:
        cv2.imwrite(str(outputs / "coherence.jpg"), cv2.cvtColor(ran.image, cv2.COLOR_RGB2BGR))
    return {"photo": "coffee", "shape": "background", "operation": "keep", "size": list(size),
            "suns": count_suns(ran.image), "calls": ran.calls, "generated_pixels": ran.generated_pixels,
            "seconds": round(ran.seconds, 3), "changed_outside": changed_outside(rgb, ran.image, ran.mask),
            "size_ok": ran.image.shape == rgb.shape}


def measure(photos=None, shapes=None, coherence_size=None, drift: float = 1.0, outputs: Path | None = None,
            log=print) -> dict:
    """Every seam case and the coherence case (by default: PHOTOS x SHAPES, COHERENCE_SIZE);
    ``outputs``: a folder to keep the edited images in."""
    photos, shapes = photos or PHOTOS, shapes or SHAPES
    coherence_size = coherence_size or COHERENCE_SIZE
    if outputs is not None:
        outputs.mkdir(parents=True, exist_ok=True)
    cases = []
    for name in photos:
        for shape in shapes:
            cases.append(seam_case(name, shape, drift=drift, outputs=outputs))
            c = cases[-1]
            log(f"  seam {name:10s} {shape:10s} matched {c['seam_matched']:.3f}  unmatched {c['seam_unmatched']:.3f}"
                f"  calls {sum(c['calls'].values())}  changed outside {c['changed_outside']}")
    coherence = coherence_case(coherence_size, outputs=outputs)
    log(f"  coherence {coherence['size'][0]}x{coherence['size'][1]} keep-subject: {coherence['suns']} sun(s), "
        f"calls {coherence['calls']}, {coherence['seconds']} s")
    report = {
        "seam": seam_summary(max(c["seam_matched"] for c in cases), max(c["seam_unmatched"] for c in cases), drift),
        "coherence": {"suns": coherence["suns"], "size": coherence["size"]},
        "changed_outside": sum(c["changed_outside"] for c in cases) + coherence["changed_outside"],
        "size_ok": all(c["size_ok"] for c in cases) and coherence["size_ok"],
        "cases": cases + [coherence],
    }
    report["targets"] = check(report)
    return report


def seam_summary(matched: float, unmatched: float, drift: float) -> dict:
    """The worst seams with and without colour matching, and how much lower matching makes the seam:
    ``ratio`` of the scores as they are, and ``excess_ratio`` of what each adds to the photo's own
    gradient (a score of 1 is no seam at all). The target reads the excess: a score can never go below
    what the new content itself brings (about 1.1 with this oracle even with no drift, see
    docs/quality.md), so the plain ratio cannot reach 2 while the unmatched seam is under about 2.2."""
    return {"matched": matched, "unmatched": unmatched, "drift": drift,
            "ratio": round(unmatched / matched, 2),
            "excess_ratio": round((unmatched - 1) / (matched - 1), 2) if matched > 1 else None}


def check(report: dict) -> dict[str, bool]:
    seam = report["seam"]
    return {
        "seam_matched_max": seam["matched"] <= TARGETS["seam_matched_max"],
        # matched at or below the photo's own gradient: no seam left to halve
        "seam_improvement_min": seam["matched"] <= 1 or seam["unmatched"] - 1 >= TARGETS["seam_improvement_min"]
                                * (seam["matched"] - 1),
        "suns": report["coherence"]["suns"] == TARGETS["suns"],
        "changed_outside": report["changed_outside"] == TARGETS["changed_outside"] and report["size_ok"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: one photo, every shape, a 2000x1500 coherence photo")
    parser.add_argument("--drift", type=float, default=1.0,
                        help="scale of the seam oracle's colour drift (1: offsets up to 12 levels, gains up to "
                             "8%%, gradients up to 8 levels; see benchmarks/oracles.py)")
    parser.add_argument("--outputs", type=Path, default=None, help="keep the edited images in this folder")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print("promptpaint quality (oracle inpainters, no weights)")
    if args.quick:
        report = measure(photos=PHOTOS[:1], coherence_size=(2000, 1500), drift=args.drift, outputs=args.outputs)
    else:
        report = measure(drift=args.drift, outputs=args.outputs)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["command"] = "python -m benchmarks.quality " + " ".join(argv if argv is not None else sys.argv[1:])
    seam = report["seam"]
    print(f"seam (worst case): matched {seam['matched']:.3f}, unmatched {seam['unmatched']:.3f} "
          f"({seam['ratio']:.2f}x; the seam in excess of the photo's own gradient "
          f"{'gone' if seam['excess_ratio'] is None else str(seam['excess_ratio']) + 'x lower'})")
    print(f"coherence: {report['coherence']['suns']} sun(s) on the {report['coherence']['size'][0]}x"
          f"{report['coherence']['size'][1]} new background")
    print(f"fidelity: {report['changed_outside']} pixels changed outside the edits; sizes kept: {report['size_ok']}")
    for name, ok in report["targets"].items():
        print(f"  {'ok  ' if ok else 'MISS'} {name}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if all(report["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
