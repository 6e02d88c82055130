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

from promptpaint.cli.options import given, options_from
from promptpaint.errors import InvalidOptionError
from promptpaint.options import ModelOptions

MODEL_ROLES = ("detector", "segmenter", "inpainter", "remover")

#: the model roles each command needs with a text selection (the default use)
COMMAND_ROLES = {
    "detect": ("detector",),
    "segment": ("detector", "segmenter"),
    "replace": ("detector", "segmenter", "inpainter"),
    "remove": ("detector", "segmenter", "remover"),
    "outpaint": ("inpainter",),
}


def _needs(command: str | None, names: tuple[str, ...], values: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, name) pairs: the named models (each in its first role), else what ``command`` needs
    with these model options, else the default model of every role."""
    from promptpaint.backends.catalog import CATALOGUE
    from promptpaint.options import parse_options

    if names and command:
        raise InvalidOptionError("name models or give --for COMMAND, not both")
    if names:
        return [(CATALOGUE[name].roles[0] if name in CATALOGUE else "model", name) for name in names]
    models = parse_options(ModelOptions, given(values, ModelOptions))
    roles = COMMAND_ROLES[command] if command else MODEL_ROLES
    return [(role, getattr(models, role)) for role in roles]


@click.group()
def models() -> None:
    """See, check and fetch the models (aliases, hub ids, local folders)."""


# ---------------------------------------------------------------------------------------- list
@models.command("list")
@click.option("--role", type=click.Choice(MODEL_ROLES + ("matting", "preview-vae", "lora")),
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
@models.command()
@click.argument("names", nargs=-1, metavar="[MODEL]...")
@click.option("--for", "command", type=click.Choice(list(COMMAND_ROLES)),
              help="check every model this command needs with the options given")
@options_from(ModelOptions, skip=("offload", "compile"))
def check(names: tuple[str, ...], command: str | None, **values: Any) -> None:
    """Check that models are on this machine (offline); exit 4 naming every missing one.

    With no MODEL and no --for, checks the default model of every role."""
    from promptpaint.backends.registry import find_missing, folder_on_disk, missing_error

    present, missing = find_missing(_needs(command, names, values))
    for ref in present:
        folder = folder_on_disk(ref) if ref.downloads or ref.is_local else None
        click.echo(f"ok  {ref.name}  {folder or 'built in'}")
    if missing:
        raise missing_error(missing)


# --------------------------------------------------------------------------------------- fetch
@models.command()
@click.argument("names", nargs=-1, metavar="[MODEL]...")
@click.option("--for", "command", type=click.Choice(list(COMMAND_ROLES)),
              help="fetch every model this command needs with the options given")
@options_from(ModelOptions, skip=("offload", "compile"))
def fetch(names: tuple[str, ...], command: str | None, **values: Any) -> None:
    """Download exactly the files promptpaint reads (safetensors only; the fp16 variant when the
    models will run in half precision: --device cuda/mps or --dtype float16/bfloat16).

    Downloads resume where they stopped; gated models need a token (`hf auth login` or HF_TOKEN)
    after accepting their licence on huggingface.co."""
    from promptpaint.backends import fetch as files
    from promptpaint.backends.registry import get, resolve

    if not names and not command:
        raise InvalidOptionError("name the models to fetch (e.g. `promptpaint models fetch sd15`) or give --for COMMAND")
    if files.offline():
        raise InvalidOptionError("HF_HUB_OFFLINE is set: fetching needs the hub; unset it on a machine with network "
                                 "access and copy the folders (`promptpaint models path`) here")
    models_given = given(values, ModelOptions)
    half = files.runs_half(models_given.get("device", "auto"), models_given.get("dtype", "auto"))
    if sys.stderr.isatty():
        from huggingface_hub.utils import enable_progress_bars

        enable_progress_bars()
    for role, name in _needs(command, names, values):
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
