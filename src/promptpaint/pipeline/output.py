"""The one writer of results, used by the CLI, the server and batch alike.

It owns every decision about an output file: its name (``out.png``; ``out_0.png``, ``out_1.png``
... for variants), the overwrite rule (never an input, never an existing file without
``--overwrite``, checked before any model loads), the format (from the suffix), what travels with
the pixels (alpha, the input's ICC colour profile, the replayable recipe of that variant, embedded
in PNGs) and the atomic write (no half-written file, ever).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any, TypeVar

from promptpaint.core.images import (LoadedImage, atomic_write_bytes, atomic_write_text, check_writable,
                                     encode_image, encode_mask, format_for_path)
from promptpaint.core.types import EditResult, Segmentation
from promptpaint.pipeline.recipe import recipe_metadata, variant_recipe

P = TypeVar("P", str, PurePath)

#: what ``promptpaint segment`` writes in its folder (plus one ``instance_NN_<label>.png`` per instance)
SEGMENT_FILES = ("mask.png", "overlay.png", "detections.json")


def default_output(image: Path, op: str) -> Path:
    """``photo.jpg`` edited by ``op`` -> ``photo.<op>.png`` beside it (PNG keeps the recipe)."""
    return image.with_name(f"{image.stem}.{op}.png")


def variant_paths(path: P, count: int) -> list[P]:
    """``a/b.png`` for one variant; ``a/b_0.png``, ``a/b_1.png``... for several (same type as given)."""
    if count == 1:
        return [path]
    pure = PurePath(path)
    names = [pure.with_name(f"{pure.stem}_{i}{pure.suffix}") for i in range(count)]
    return [type(path)(name) if isinstance(path, str) else path.with_name(name.name) for name in names]


def check_outputs(paths: Iterable[Path | None], *, inputs: Iterable[Any] = (), overwrite: bool = False,
                  masks: Iterable[Path | None] = ()) -> None:
    """Refuse, before any work, outputs that cannot be written: an unknown suffix, an input, an
    existing file without ``overwrite``. ``masks`` are written as PNG."""
    inputs = [p for p in inputs if p is not None]
    for path in paths:
        if path is not None:
            format_for_path(path)
            check_writable(path, overwrite=overwrite, protect=inputs)
    for path in masks:
        if path is not None:
            if format_for_path(path) != "PNG":
                from promptpaint.errors import InvalidOptionError

                raise InvalidOptionError(f"masks are written as PNG; use a .png path, not {path}")
            check_writable(path, overwrite=overwrite, protect=inputs)


def encode_variant(result: EditResult, index: int = 0, format: str = "PNG") -> bytes:  # noqa: A002
    """Variant ``index`` as file bytes, with its alpha, the input's colour profile and (PNG) the
    recipe that replays that variant alone."""
    return encode_image(result.variants[index], result.alpha, format=format, icc_profile=result.icc_profile,
                        metadata=recipe_metadata(variant_recipe(result.recipe, index)))


def write_result(result: EditResult, output: Path, *, inputs: Iterable[Any] = (), overwrite: bool = False,
                 mask_path: Path | None = None) -> list[Path]:
    """Write every variant (see :func:`variant_paths`) and, if asked, the edit mask; atomically,
    never over an input. Returns the variants' paths."""
    inputs = list(inputs)
    paths = variant_paths(Path(output), len(result.variants))
    check_outputs(paths, inputs=inputs, overwrite=overwrite, masks=[mask_path])
    for i, path in enumerate(paths):
        atomic_write_bytes(path, encode_variant(result, i, format_for_path(path)))
    if mask_path is not None:
        atomic_write_bytes(mask_path, encode_mask(result.mask))
    return paths


# ---------------------------------------------------------------- a segmentation's folder
def check_segment_folder(out_dir: Path, *, overwrite: bool = False) -> None:
    """A folder that already holds a segmentation is replaced only with ``overwrite``."""
    from promptpaint.errors import OutputExistsError

    earlier = [out_dir / name for name in ("mask.png", "detections.json") if (out_dir / name).exists()]
    if earlier and not overwrite:
        raise OutputExistsError(f"{out_dir} already holds a segmentation; pass --overwrite to replace it")


def write_segmentation(seg: Segmentation, image: LoadedImage, out_dir: Path, *, inputs: Iterable[Any] = (),
                       overwrite: bool = False) -> dict[str, Any]:
    """``mask.png``, one PNG per instance, ``overlay.png`` and ``detections.json`` (how it was
    found: models and thresholds used, instances with RLE masks). Returns the report."""
    from promptpaint.core.annotate import overlay
    from promptpaint.core.serialize import safe_name, segmentation_to_json

    check_segment_folder(out_dir, overwrite=overwrite)
    inputs = [p for p in inputs if p is not None]
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("instance_*.png"):  # a new run may find fewer instances
        old.unlink()

    def write(name: str, data: bytes) -> None:
        check_writable(out_dir / name, overwrite=True, protect=inputs)
        atomic_write_bytes(out_dir / name, data)

    write("mask.png", encode_mask(seg.mask))
    files = []
    for i, label in enumerate(seg.detections.labels):
        name = f"instance_{i:02d}_{safe_name(label)}.png"
        write(name, encode_mask(seg.detections.masks[i]))
        files.append(name)
    write("overlay.png", encode_image(overlay(image.rgb, seg.detections, seg.mask, seg.excluded)))
    report = segmentation_to_json(seg)
    for item, name in zip(report["instances"], files):
        item["file"] = name
    report.update({"image": image.source, "detector": report.get("detector"), "mask_file": "mask.png"})
    atomic_write_text(out_dir / "detections.json", json.dumps(report, indent=2))
    return report
