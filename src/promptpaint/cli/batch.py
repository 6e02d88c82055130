"""``promptpaint batch``: one recipe over a folder, a glob or a manifest (see docs/batch.md).

Only click and promptpaint's light modules are imported here; the engines import torch / ray.
"""

from __future__ import annotations

from typing import Any

import click

from promptpaint.cli.options import given, options_from
from promptpaint.options import ModelOptions


@click.command()
@click.argument("input_spec", metavar="INPUT")
@click.option("--recipe", "-r", required=True, help="recipe file or text, as for `promptpaint run` ({edits: [...]})")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="output folder: outputs mirror the inputs' relative paths; results in OUTDIR/manifest.jsonl")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: one process; ray: an actor pool on a local Ray or a cluster")
@click.option("--ray-address", metavar="ADDR", help="join this Ray cluster (ray://head:10001, auto) "
              "instead of starting a local Ray")
@click.option("--workers", type=int, help="Ray actors [default: one per GPU, else 1]")
@click.option("--batch-size", type=int,
              help="images edited together, their model calls batched [default: 4 on a GPU, 1 (exactly as "
                   "`run`) on a CPU]")
@click.option("--resume", is_flag=True, help="skip items already done in OUTDIR/manifest.jsonl; redo the rest")
@click.option("--fail-fast", is_flag=True, help="stop at the first failed item")
@click.option("--overwrite", is_flag=True, help="redo every item, replacing existing outputs")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg", "webp"]), default="png", show_default=True,
              help="output format (PNG embeds the recipe)")
@options_from(ModelOptions, skip=("preview_decoder",))  # a batch shows no live previews
def batch(input_spec: str, recipe: str, out_dir: str, engine: str, ray_address: str | None, workers: int | None,
          batch_size: int | None, resume: bool, fail_fast: bool, overwrite: bool, fmt: str, **values: Any) -> None:
    """Apply a recipe to every image of INPUT: a folder (recursive), a glob ('shoot/**/*.jpg'), or a
    JSONL/CSV manifest whose rows name an `image` and may override recipe fields (prompt, seed, ...).

    Exit code 0 when every item is done, 1 when any item failed (see OUTDIR/manifest.jsonl),
    2 for invalid options.
    """
    from promptpaint.batch import BatchSettings, run_batch

    settings = BatchSettings(input=input_spec, recipe=recipe, out_dir=out_dir, engine=engine,
                             ray_address=ray_address, workers=workers, batch_size=batch_size, resume=resume,
                             fail_fast=fail_fast, overwrite=overwrite, fmt=fmt, models=given(values, ModelOptions))
    summary = run_batch(settings)
    click.echo(summary.line(), err=True)
    if summary.exit_code:
        raise click.exceptions.Exit(summary.exit_code)
