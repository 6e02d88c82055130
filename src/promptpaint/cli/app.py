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

from promptpaint import __version__, operations
from promptpaint.cli.options import given, options_from
from promptpaint.errors import InvalidOptionError, PromptPaintError
from promptpaint.operations import Operation
from promptpaint.operations.base import MODEL_ROLES  # fields of every edit given as model options (--detector...)
from promptpaint.options import EditOptions, ModelOptions, SegmentOptions, SelectOptions


class _Group(click.Group):
    """Maps typed library errors, and click's own usage errors, to one line on stderr and their
    exit code (click would print Usage/Try/Error over four lines)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as error:
            where = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
            click.echo(f"error: {' '.join(error.format_message().split())}{where}", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"error: {' '.join(error.format_message().split())}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

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
@options_from(SegmentOptions, skip=("exclude", "box", "point", "mask", "invert", "fill_holes",
                                    "min_area", "dilate", "detector", "segmenter"))
@options_from(ModelOptions, skip=(*(r for r in MODEL_ROLES if r != "detector"), "offload", "compile",
                                  "preview_decoder"))
def detect(image: Path, **values: Any) -> None:
    """Print what the detector finds as JSON (boxes in pixels, scores, labels, thresholds used)."""
    from promptpaint.core.serialize import detect_to_json
    from promptpaint.options import parse_options
    from promptpaint.pipeline import selection

    opts = parse_options(SegmentOptions, given(values, SegmentOptions))
    if not opts.find:
        raise InvalidOptionError("detect needs --find (what to look for)")
    dets = _pipeline(values).detect(image, opts.find, box_threshold=opts.box_threshold,
                                    text_threshold=opts.text_threshold, pick=opts.pick)
    click.echo(json.dumps(detect_to_json(dets), indent=2))
    _warn(selection.notes(dets.info))
    selection.require_found(dets.info["missing"], bool(len(dets)), opts.require)
    _warn_missing(dets.info["missing"])


def _warn_missing(missing: list[str]) -> None:
    """One line on stderr when some phrases found nothing and the command went on without them."""
    from promptpaint.pipeline.selection import missing_warning

    if missing:
        click.echo(missing_warning(missing), err=True)


# ------------------------------------------------------------------------------------------ segment
@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@options_from(SegmentOptions, skip=("detector", "segmenter"))
@options_from(ModelOptions, skip=(*(r for r in MODEL_ROLES if r not in ("detector", "segmenter")), "offload",
                                  "compile", "preview_decoder"))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="folder for mask.png, instance PNGs, overlay.png and detections.json")
@click.option("--overwrite", is_flag=True, help="replace the files of an earlier run in the folder")
def segment(image: Path, out_dir: Path, overwrite: bool, **values: Any) -> None:
    """Write the mask of what --find names (minus --exclude) and how it was found."""
    from promptpaint.core.images import load_image
    from promptpaint.pipeline import selection
    from promptpaint.pipeline.output import check_segment_folder, write_segmentation

    check_segment_folder(out_dir, overwrite=overwrite)
    loaded = load_image(image)
    seg = _pipeline(values).segment(loaded, **given(values, SegmentOptions))
    _warn(selection.notes(seg.info))
    report = write_segmentation(seg, loaded, out_dir, inputs=[image], overwrite=overwrite)
    click.echo(f"{len(seg.detections)} instance(s), {report['mask_area']} px selected -> {out_dir}")
    _warn_missing(seg.info.get("missing", []))


# ------------------------------------------------------------------------------------------ edits
def _output_options(func):
    func = click.option("--overwrite", is_flag=True, help="replace an existing output file")(func)
    func = click.option("--save-mask", type=click.Path(dir_okay=False, path_type=Path),
                        help="write the effective edit mask (255 = may differ, 0 = untouched) as PNG")(func)
    func = click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                        help="output image (.png keeps the recipe; default: IMAGE.<op>.png beside the input)")(func)
    return func


def _check_outputs(image: Path, output: Path | None, variants: int, save_mask: Path | None, overwrite: bool,
                   op: str) -> Path:
    """Refuse an output that exists (without --overwrite) or is the input, before any model loads."""
    from promptpaint.pipeline.output import check_outputs, default_output, variant_paths

    output = output or default_output(image, op)
    check_outputs(variant_paths(output, variants), inputs=[image], overwrite=overwrite, masks=[save_mask])
    return output


def _edit_and_write(edit_or_recipe: Any, image: Path, output: Path, save_mask: Path | None, overwrite: bool,
                    values: dict[str, Any]) -> None:
    from promptpaint.core.images import load_image
    from promptpaint.pipeline.output import write_result

    loaded = load_image(image)
    pipe = _pipeline(values)
    update, close = _progress_bar()
    try:
        if isinstance(edit_or_recipe, EditOptions):
            result = pipe.edit(loaded, edit_or_recipe, progress=update)
        else:
            result = pipe.run(loaded, edit_or_recipe, progress=update)
    finally:
        close()
    _warn(result.info.get("notes", []))
    for path in write_result(result, output, inputs=[image], overwrite=overwrite, mask_path=save_mask):
        click.echo(str(path))
    from promptpaint.pipeline.recipe import missing_phrases

    _warn_missing(missing_phrases(result.recipe))


def _warn(notes: list[str]) -> None:
    """What the library noted for the user (a clamped box, a whole-image edit): one line each."""
    for note in notes:
        click.echo(f"warning: {note}", err=True)


def _edit_command(operation: Operation) -> click.Command:
    """The command of one operation: its options' fields as flags, the models it may load, -o."""
    hidden = MODEL_ROLES if operation.takes_selection else MODEL_ROLES + tuple(SelectOptions.model_fields)
    hidden += operation.unused_options
    unused_models = tuple(role for role in MODEL_ROLES if role not in operation.model_roles())
    unused_models += (*operation.unused_options, "preview_decoder")  # the CLI shows no live previews

    @click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
    @options_from(operation.options, skip=hidden)
    @options_from(ModelOptions, skip=unused_models)
    @_output_options
    def command(image: Path, output: Path | None, save_mask: Path | None, overwrite: bool, **values: Any) -> None:
        edit = operation.parse(given(values, operation.options))
        output = _check_outputs(image, output, edit.variants, save_mask, overwrite, operation.name)
        _edit_and_write(edit, image, output, save_mask, overwrite, values)

    return click.command(operation.name, help=operation.summary())(command)


for _operation in operations.all_operations():
    main.add_command(_edit_command(_operation))


# ------------------------------------------------------------------------------------------ run
@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("recipe", required=False)
@click.option("--from-image", type=click.Path(dir_okay=False, path_type=Path),
              help="replay the recipe embedded in a PNG that promptpaint wrote")
@options_from(ModelOptions, skip=("preview_decoder",))
@_output_options
def run(image: Path, recipe: str | None, from_image: Path | None, output, save_mask, overwrite,
        **values: Any) -> None:
    """Apply a recipe (YAML/JSON: {"edits": [...]}) of several edits in order."""
    from promptpaint.pipeline.recipe import load_recipe

    if bool(recipe) == bool(from_image):
        raise InvalidOptionError("give either a RECIPE file or --from-image PNG")
    parsed = load_recipe(str(from_image) if from_image else recipe)
    output = _check_outputs(image, output, parsed.edits[-1].variants, save_mask, overwrite, "run")
    _edit_and_write(parsed, image, output, save_mask, overwrite, {**parsed.pipeline, **given(values, ModelOptions)})


# Commands defined in their own modules (their heavy imports stay inside the command bodies).
# Each module imports only click and promptpaint's light modules at import time.
from promptpaint.cli.batch import batch  # noqa: E402
main.add_command(batch)
from promptpaint.cli.serve import serve  # noqa: E402
main.add_command(serve)
from promptpaint.cli.models import models  # noqa: E402
main.add_command(models)


def entry() -> None:
    """Console-script entry point."""
    main(prog_name="promptpaint")


if __name__ == "__main__":
    entry()
