"""The ``promptpaint`` command: a thin layer that turns options into pipeline calls.

Heavy imports happen inside the commands, so ``promptpaint --help`` stays instant. Library errors
are typed; this is the one place that turns them into exit codes (see ``errors.py``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from promptpaint import __version__
from promptpaint.cli.options import given, options_from
from promptpaint.errors import InvalidOptionError, OutputExistsError, PromptPaintError
from promptpaint.options import ModelOptions, OutpaintEdit, RemoveEdit, ReplaceEdit, SegmentOptions

EDIT_SKIP = ("detector", "segmenter", "inpainter", "remover")  # given once, as model options


class _Group(click.Group):
    """Maps typed library errors to one line on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PromptPaintError as error:
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="promptpaint")
@click.option("-v", "--verbose", count=True, help="more log output (-vv for debug)")
def main(verbose: int) -> None:
    """Edit images with words: find, cut out, replace, remove, outpaint.

    Every pixel outside the edit stays byte-identical; the edited area is generated at full
    resolution. Models are aliases (gdino-tiny, owlv2, sam-b, sam2-t, sam3, sd15, sdxl, flux-fill,
    lama, telea), hub ids, or local folders.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _pipeline(values: dict[str, Any]):
    from promptpaint.pipeline.pipeline import Pipeline

    return Pipeline(**given(values, ModelOptions))


def _progress_bar():
    """A denoising-steps bar on stderr, reset for each window; None when stderr is no terminal."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=0, unit="step", file=sys.stderr, leave=False)

    def update(i: int, total: int) -> None:
        if bar.total != total or i == 1:
            bar.reset(total=total)
        bar.n = i
        bar.refresh()

    return update, bar.close


# ------------------------------------------------------------------------------------------ detect
@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@options_from(SegmentOptions, skip=("exclude", "box", "point", "mask", "pick", "invert", "fill_holes",
                                    "min_area", "dilate", "detector", "segmenter"))
@options_from(ModelOptions, skip=("segmenter", "inpainter", "remover", "offload", "compile"))
def detect(image: Path, **values: Any) -> None:
    """Print what the detector finds as JSON (boxes in pixels, scores, labels)."""
    from promptpaint.core.serialize import detections_to_json
    from promptpaint.errors import NothingFoundError

    opts = given(values, SegmentOptions)
    if not opts.get("find"):
        raise InvalidOptionError("detect needs --find (what to look for)")
    pipe = _pipeline(values)
    dets = pipe.detect(image, opts["find"], box_threshold=opts.get("box_threshold", 0.3),
                       text_threshold=opts.get("text_threshold", 0.25))
    labels = [label for f in opts["find"] for label in f.split(".") if label.strip()]
    missing = [label.strip() for label in labels if label.strip() not in dets.labels]
    click.echo(json.dumps({"image_size": list(dets.image_size or ()), "detector": pipe.models.detector,
                           "detections": detections_to_json(dets, with_masks=False)}, indent=2))
    if missing:
        raise NothingFoundError(missing)


# ------------------------------------------------------------------------------------------ segment
@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@options_from(SegmentOptions, skip=("detector", "segmenter"))
@options_from(ModelOptions, skip=("inpainter", "remover", "offload", "compile"))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="folder for mask.png, instance PNGs, overlay.png and detections.json")
@click.option("--overwrite", is_flag=True, help="replace the files of an earlier run in the folder")
def segment(image: Path, out_dir: Path, overwrite: bool, **values: Any) -> None:
    """Write the mask of what --find names (minus --exclude) and how it was found."""
    from promptpaint.core.annotate import overlay
    from promptpaint.core.images import atomic_write_text, load_image, save_image, save_mask
    from promptpaint.core.serialize import safe_name, segmentation_to_json

    earlier = [p for p in (out_dir / "mask.png", out_dir / "detections.json") if p.exists()]
    if earlier and not overwrite:
        raise OutputExistsError(f"{out_dir} already holds a segmentation; pass --overwrite to replace it")
    loaded = load_image(image)
    pipe = _pipeline(values)
    seg = pipe.segment(loaded, **given(values, SegmentOptions))
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("instance_*.png"):  # a new run may find fewer instances
        old.unlink()
    protect = [image]
    save_mask(out_dir / "mask.png", seg.mask, protect=protect)
    files = []
    for i, label in enumerate(seg.detections.labels):
        name = f"instance_{i:02d}_{safe_name(label)}.png"
        save_mask(out_dir / name, seg.detections.masks[i], protect=protect)
        files.append(name)
    save_image(out_dir / "overlay.png", overlay(loaded.rgb, seg.detections, seg.mask, seg.excluded), protect=protect)
    report = segmentation_to_json(seg)
    for item, name in zip(report["instances"], files):
        item["file"] = name
    report.update({"image": str(image), "detector": report.get("detector"), "mask_file": "mask.png"})
    atomic_write_text(out_dir / "detections.json", json.dumps(report, indent=2))
    click.echo(f"{len(seg.detections)} instance(s), {report['mask_area']} px selected -> {out_dir}")


# ------------------------------------------------------------------------------------------ edits
def _output_options(func):
    func = click.option("--overwrite", is_flag=True, help="replace an existing output file")(func)
    func = click.option("--save-mask", type=click.Path(dir_okay=False, path_type=Path),
                        help="write the effective edit mask (255 = may differ, 0 = untouched) as PNG")(func)
    func = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                        help="output image (.png keeps the recipe; default: IMAGE.<op>.png beside the input)")(func)
    return func


def _default_output(image: Path, op: str) -> Path:
    return image.with_name(f"{image.stem}.{op}.png")


def _write_result(result, image: Path, output: Path | None, save_mask_path: Path | None,
                  overwrite: bool, op: str) -> None:
    """Write every variant and the mask atomically; never the input, never half a result."""
    from promptpaint.core.images import format_for_path, save_image, save_mask
    from promptpaint.pipeline.recipe import recipe_metadata, variant_recipe

    output = output or _default_output(image, op)
    format_for_path(output)  # an unknown suffix fails before any file is written
    paths = [output] if len(result.variants) == 1 else \
        [output.with_name(f"{output.stem}_{i}{output.suffix}") for i in range(len(result.variants))]
    for path in paths + ([save_mask_path] if save_mask_path else []):
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} exists; pass --overwrite to replace it")
        if path.resolve() == image.resolve():
            raise OutputExistsError(f"{path} is the input image; choose another --output")
    for i, (path, variant) in enumerate(zip(paths, result.variants)):
        save_image(path, variant, result.alpha, metadata=recipe_metadata(variant_recipe(result.recipe, i)),
                   overwrite=True, protect=[image])
    if save_mask_path:
        save_mask(save_mask_path, result.mask, overwrite=True, protect=[image])
    for path in paths:
        click.echo(str(path))


def _edit_command(op: str, model: type, values: dict[str, Any], image: Path, output, save_mask_path, overwrite,
                  extra_models: tuple[str, ...] = ()):
    from promptpaint.core.images import load_image
    from promptpaint.options import parse_options

    edit = parse_options(model, given(values, model))
    loaded = load_image(image)
    pipe = _pipeline(values)
    update, close = _progress_bar()
    try:
        result = pipe.edit(loaded, edit, progress=update)
    finally:
        close()
    _write_result(result, image, output, save_mask_path, overwrite, op)


@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@options_from(ReplaceEdit, skip=EDIT_SKIP)
@options_from(ModelOptions, skip=("remover",))
@_output_options
def replace(image: Path, output, save_mask, overwrite, **values: Any) -> None:
    """Repaint what --find selects with --prompt, or everything except --keep (new background)."""
    _edit_command("replace", ReplaceEdit, values, image, output, save_mask, overwrite)


@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@options_from(RemoveEdit, skip=EDIT_SKIP)
@options_from(ModelOptions)
@_output_options
def remove(image: Path, output, save_mask, overwrite, **values: Any) -> None:
    """Erase what is selected and fill the hole (LaMa by default; --remover telea needs no download)."""
    _edit_command("remove", RemoveEdit, values, image, output, save_mask, overwrite)


@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@options_from(OutpaintEdit, skip=EDIT_SKIP + ("find", "exclude", "box", "point", "mask", "box_threshold",
                                             "text_threshold", "pick", "invert", "fill_holes", "min_area", "dilate"))
@options_from(ModelOptions, skip=("detector", "segmenter", "remover"))
@_output_options
def outpaint(image: Path, output, save_mask, overwrite, **values: Any) -> None:
    """Extend the canvas (--aspect 16:9, --expand L,T,R,B or --size WxH) and fill the new area."""
    _edit_command("outpaint", OutpaintEdit, values, image, output, save_mask, overwrite)


@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("recipe", required=False)
@click.option("--from-image", type=click.Path(dir_okay=False, path_type=Path),
              help="replay the recipe embedded in a PNG that promptpaint wrote")
@options_from(ModelOptions)
@_output_options
def run(image: Path, recipe: str | None, from_image: Path | None, output, save_mask, overwrite,
        **values: Any) -> None:
    """Apply a recipe (YAML/JSON: {"edits": [...]}) of several edits in order."""
    from promptpaint.core.images import load_image
    from promptpaint.pipeline.recipe import load_recipe

    if bool(recipe) == bool(from_image):
        raise InvalidOptionError("give either a RECIPE file or --from-image PNG")
    parsed = load_recipe(str(from_image) if from_image else recipe)
    loaded = load_image(image)
    pipe = _pipeline({**parsed.pipeline, **given(values, ModelOptions)})
    update, close = _progress_bar()
    try:
        result = pipe.run(loaded, parsed, progress=update)
    finally:
        close()
    _write_result(result, image, output, save_mask, overwrite, "run")


# Commands defined in their own modules (their heavy imports stay inside the command bodies).
# Each module imports only click and promptpaint's light modules at import time.
from promptpaint.cli.batch import batch  # noqa: E402
main.add_command(batch)
from promptpaint.cli.serve import serve  # noqa: E402
main.add_command(serve)


def entry() -> None:
    """Console-script entry point."""
    main(prog_name="promptpaint")


if __name__ == "__main__":
    entry()
