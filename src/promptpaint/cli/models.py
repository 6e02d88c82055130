"""``promptpaint models``: see, check and fetch the models, and find them on disk.

``list`` and ``check`` work offline (they only read the local folders and the Hugging Face cache);
``fetch`` downloads exactly the files promptpaint reads (``backends.fetch``) with huggingface_hub,
which resumes interrupted downloads and honours ``HF_HOME``, ``HF_TOKEN`` and ``hf auth login``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from promptpaint import operations
from promptpaint.cli.options import given, options_from
from promptpaint.errors import InvalidOptionError
from promptpaint.operations.base import MODEL_ROLES  # detector, segmenter, inpainter, remover, matting
from promptpaint.options import NO_MATTING, ModelOptions

#: what --for accepts: every operation (replace, remove, outpaint, ...), segment and detect
COMMANDS = [*operations.names(), "segment", "detect"]
#: lets `--for COMMAND` be followed by that command's own options (parsed by its own flags)
_TAKES_COMMAND_OPTIONS = {"ignore_unknown_options": True}


def _needs(ctx: click.Context, command: str | None, args: tuple[str, ...], values: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, name) pairs: for ``--for COMMAND``, every model the command needs with its options
    (``args``, parsed by the command's own flags; the pipeline decides, as its preflight does);
    else the named models; else the default model of every role."""
    from promptpaint.backends.catalog import CATALOGUE
    from promptpaint.pipeline.pipeline import Pipeline

    models = given(values, ModelOptions)
    if command:
        options = {**_command_options(ctx, command, args), **models}
        pipe = Pipeline(**given(options, ModelOptions))
        return list(pipe.needed_models(command, options).items())
    if args:
        unknown = [a for a in args if a.startswith("-")]
        if unknown:
            raise InvalidOptionError(f"no such option {unknown[0]} (a command's options come after --for COMMAND)")
        return [(CATALOGUE[name].roles[0] if name in CATALOGUE else "model", name) for name in args]
    pipe = Pipeline(**models)
    return [(role, getattr(pipe.models, role)) for role in MODEL_ROLES
            if (role, getattr(pipe.models, role)) != ("matting", NO_MATTING)]


def _command_options(ctx: click.Context, command: str, args: tuple[str, ...]) -> dict[str, Any]:
    """Parse ``args`` with the flags of ``promptpaint COMMAND`` (its image and output aside)."""
    real = ctx.find_root().command.get_command(ctx, command)
    params = []
    for param in real.params:
        if isinstance(param, click.Argument) or param.name in ("output", "out_dir", "save_mask", "overwrite"):
            continue
        params.append(param)
    try:
        parsed = click.Command(command, params=params).make_context(f"--for {command}", list(args), parent=ctx)
    except click.UsageError as error:
        raise InvalidOptionError(f"--for {command}: {error.format_message()}") from None
    return parsed.params


@click.group()
def models() -> None:
    """See, check and fetch the models (aliases, hub ids, local folders)."""


# ---------------------------------------------------------------------------------------- list
@models.command("list")
@click.option("--role", type=click.Choice(MODEL_ROLES + ("preview-vae", "lora")),
              help="only the models for this role")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per model, for scripts")
def list_models(role: str | None, as_json: bool) -> None:
    """Every alias: role, hub id, download size, where it is on disk, gating, licence, commercial use."""
    from promptpaint.backends.catalog import CATALOGUE
    from promptpaint.backends.fetch import human_size
    from promptpaint.backends.registry import folder_on_disk, resolve

    rows = []
    for alias, entry in CATALOGUE.items():
        if role and role not in entry.roles:
            continue
        ref = resolve(alias)
        folder = folder_on_disk(ref) if ref.downloads else None
        where = "built in" if not ref.downloads else str(folder) if folder else "not downloaded"
        size = human_size(entry.size) if entry.size else "-"
        if entry.size_fp16:
            size += f" (fp16 {human_size(entry.size_fp16)})"
        if entry.approximate:
            size = "~" + size
        rows.append({"alias": alias, "role": ",".join(entry.roles), "hub_id": entry.hub_id or "-", "size": size,
                     "bytes": entry.size, "bytes_fp16": entry.size_fp16, "where": where,
                     "gated": "yes" if entry.gated else "no", "licence": entry.licence.name,
                     "commercial": entry.licence.commercial})
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    columns = ("alias", "role", "hub_id", "size", "gated", "licence", "commercial", "where")
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns[:-1]}
    click.echo("  ".join(c.upper().ljust(widths.get(c, 0)) for c in columns).rstrip())
    for row in rows:
        click.echo("  ".join(str(row[c]).ljust(widths.get(c, 0)) for c in columns).rstrip())


# --------------------------------------------------------------------------------------- check
@models.command(context_settings=_TAKES_COMMAND_OPTIONS)
@click.option("--for", "command", type=click.Choice(COMMANDS),
              help="check every model this command needs; its own options may follow (e.g. --box, --inpainter)")
@options_from(ModelOptions, skip=("offload", "compile"))
@click.argument("args", nargs=-1, metavar="[MODEL... | COMMAND OPTIONS...]", type=click.UNPROCESSED)
@click.pass_context
def check(ctx: click.Context, command: str | None, args: tuple[str, ...], **values: Any) -> None:
    """Check that models are on this machine (offline); exit 4 naming every missing one.

    Names models, or checks what `--for COMMAND [its options]` would load, as its preflight does
    (`models check --for replace --box 10,10,90,90 --inpainter sdxl`). With neither, checks the
    default model of every role."""
    from promptpaint.backends.registry import find_missing, folder_on_disk, missing_error

    needs = _needs(ctx, command, args, values)
    if not needs:
        click.echo("no model needed")
    present, missing = find_missing(needs)
    for ref in present:
        folder = folder_on_disk(ref) if ref.downloads or ref.is_local else None
        click.echo(f"ok  {ref.name}  {folder or 'built in'}")
    if missing:
        raise missing_error(missing)


# --------------------------------------------------------------------------------------- fetch
@models.command(context_settings=_TAKES_COMMAND_OPTIONS)
@click.option("--for", "command", type=click.Choice(COMMANDS),
              help="fetch every model this command needs; its own options may follow (e.g. --inpainter sdxl)")
@options_from(ModelOptions, skip=("offload", "compile"))
@click.argument("args", nargs=-1, metavar="[MODEL... | COMMAND OPTIONS...]", type=click.UNPROCESSED)
@click.pass_context
def fetch(ctx: click.Context, command: str | None, args: tuple[str, ...], **values: Any) -> None:
    """Download exactly the files promptpaint reads (safetensors only; the fp16 variant when the
    models will run in half precision: --device cuda/mps or --dtype float16/bfloat16).

    Names models (`models fetch sd15 lama`), or fetches what `--for COMMAND [its options]` would
    load. Downloads resume where they stopped; gated models need a token (`hf auth login` or
    HF_TOKEN) after accepting their licence on huggingface.co."""
    from promptpaint.backends import fetch as files
    from promptpaint.backends.registry import get, resolve

    if not args and not command:
        raise InvalidOptionError("name the models to fetch (e.g. `promptpaint models fetch sd15`) or give --for COMMAND")
    if files.offline():
        raise InvalidOptionError("HF_HUB_OFFLINE is set: fetching needs the hub; unset it on a machine with network "
                                 "access and copy the folders (`promptpaint models path`) here")
    models_given = given(values, ModelOptions)
    half = files.runs_half(models_given.get("device", "auto"), models_given.get("dtype", "auto"))
    if sys.stderr.isatty():
        from huggingface_hub.utils import enable_progress_bars

        enable_progress_bars()
    for role, name in _needs(ctx, command, args, values):
        ref = resolve(name, role=role)
        if not ref.downloads:
            click.echo(f"{name}: {'a local folder' if ref.is_local else 'built in'}, nothing to fetch")
            continue
        folder = get(ref, half=half, progress=sys.stderr.isatty(), role=role)
        click.echo(f"{name}: {folder}")


# ---------------------------------------------------------------------------------------- path
@models.command()
@click.argument("name", metavar="MODEL")
def path(name: str) -> None:
    """Print where a model is on disk (to copy it to a machine without network: pass the copied
    folder as the model there)."""
    from promptpaint.backends.registry import Missing, folder_on_disk, missing_error, resolve

    ref = resolve(name)
    if not ref.downloads and not ref.is_local:
        raise InvalidOptionError(f"{name} is built in: it has no files")
    folder = folder_on_disk(ref)
    if folder is None:
        raise missing_error([Missing(ref.entry.roles[0] if ref.entry else "model", name, ref)])
    click.echo(str(folder))
