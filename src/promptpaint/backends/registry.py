"""Model names -> loadable local folders, with one code path for aliases, hub ids and folders.

A name is an alias from the catalogue (``backends.catalog``), a hub id (``owner/name``) or a local
folder. Its family is the catalogue's for an alias, and is read from the files otherwise (see
``backends.families``): a folder's own files, a hub id's files in the local Hugging Face cache, or
those few small files fetched from the hub. Nothing is guessed from the name.

Everything is loaded from a local folder in the end. :func:`require` is the preflight: it checks
several models at once and names every missing one in one line, with the one
``promptpaint models fetch ...`` command that fixes it; where the hub is reachable it downloads them
first (exactly the files promptpaint reads, see ``backends.fetch``). An unreachable hub fails in
seconds, never in transformers' two-minute retry loop.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from promptpaint.backends import fetch
from promptpaint.backends.catalog import CATALOGUE, ModelEntry, aliases_for
from promptpaint.backends.families import (FAMILIES, UnknownFamily, families_for, family_from_config,
                                           family_from_model_index, family_of_folder)
from promptpaint.errors import InvalidOptionError, ModelLoadError

log = logging.getLogger(__name__)

#: alias -> (hub id, family); the catalogue has the rest (roles, sizes, licences)
ALIASES: dict[str, tuple[str, str]] = {a: (e.hub_id or f"opencv:{a}", e.family) for a, e in CATALOGUE.items()}

DETECTOR_FAMILIES = families_for("detector")
SEGMENTER_FAMILIES = families_for("segmenter")
INPAINTER_FAMILIES = families_for("inpainter")
REMOVER_FAMILIES = families_for("remover")
MATTER_FAMILIES = families_for("matting")
LORA_FAMILIES = families_for("lora")  # fast mode's distillation LoRAs
PREVIEW_FAMILIES = families_for("preview-vae")  # tiny autoencoders that draw live previews

#: why a path-like name is missing (the words of resolve's error)
NO_FOLDER = "neither a known alias, a hub id (owner/name) nor an existing folder"
UNREACHABLE = "hub unreachable"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelRef:
    """A resolved model name: what the user typed, the hub id or folder, and the family."""

    name: str
    source: str  # hub id, local folder, or "opencv:telea"
    family: str
    is_local: bool

    @property
    def id(self) -> str:
        """What to record in outputs: the hub id, or the folder path."""
        return self.source

    @property
    def entry(self) -> ModelEntry | None:
        """The catalogue entry, when the name is an alias."""
        return CATALOGUE.get(self.name)

    @property
    def layout(self) -> str:
        return FAMILIES[self.family].layout

    @property
    def pinned(self) -> tuple[str, ...]:
        """The exact files the catalogue names for this alias (usually none: the layout decides)."""
        return self.entry.files if self.entry else ()

    @property
    def downloads(self) -> bool:
        """Whether the model comes from the hub (not a folder, not built in)."""
        return not self.is_local and self.layout != "builtin"


def resolve(name: str, allowed: tuple[str, ...] | None = None, role: str = "model") -> ModelRef:
    """Resolve an alias, hub id or local folder; check it is of an ``allowed`` family."""
    name = str(name).strip()
    if not name:
        raise ModelLoadError(f"no {role} given")
    builtin = name.removeprefix("opencv:")
    if builtin != name and builtin in CATALOGUE and CATALOGUE[builtin].hub_id is None:
        name = builtin  # the id a recipe records for a built-in model ("opencv:telea") names it too
    if name in CATALOGUE:
        entry = CATALOGUE[name]
        ref = ModelRef(name, entry.hub_id or f"opencv:{name}", entry.family, False)
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser().resolve()
        ref = ModelRef(name, str(folder), _folder_family(folder, role), True)
    elif _HUB_ID.match(name):
        ref = ModelRef(name, name, _hub_family(name, role), False)
    else:  # a path-like name is a folder that is missing (named with the others by `require`)
        known = aliases_for(role) if role in _ROLE_NAMES else list(CATALOGUE)
        folder = name.startswith((".", "/", "~")) or "/" in name or "\\" in name
        if not folder:  # a mistyped alias: a usage error, answered with this role's aliases only
            raise InvalidOptionError(unknown_alias(name, role, known))
        raise ModelLoadError(f"{role} {name!r} is neither a known alias ({', '.join(known)}), "
                             "a hub id (owner/name) nor an existing folder", [name])
    if allowed is not None and ref.family not in allowed:
        raise ModelLoadError(f"{name!r} is a {ref.family} model and cannot be used as the {role}")
    return ref


_ROLE_NAMES = {role for family in FAMILIES.values() for role in family.roles}


def unknown_alias(name: str, role: str, known: list[str]) -> str:
    """One line for a name that is no alias of ``role``, offering the closest of its aliases."""
    import difflib

    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return (f"unknown {role} {name!r}: {guess}{role} aliases are {', '.join(known)} "
            "(or give a hub id owner/name or a folder)")


def _allowed(role: str) -> tuple[str, ...] | None:
    """The families that may fill ``role``; None (any) for a role no family declares."""
    return families_for(role) if role in _ROLE_NAMES else None


def _folder_family(folder: Path, role: str) -> str:
    try:
        family = family_of_folder(folder)
    except UnknownFamily as error:
        raise ModelLoadError(f"{role} folder {folder} holds {error}, which promptpaint does not support") from None
    if family is None:
        raise ModelLoadError(f"{role} folder {folder} holds no recognisable model (no config.json, "
                             "model_index.json or .onnx file)")
    return family


def _hub_family(repo_id: str, role: str) -> str:
    """A hub id's family from its config files: in the local cache, else fetched (small files only)."""
    folder = fetch.snapshot_folder(repo_id)
    if folder is not None:
        try:
            family = family_of_folder(folder)
        except UnknownFamily as error:
            raise ModelLoadError(f"{repo_id!r} is {error}, which promptpaint does not support") from None
        if family is not None:
            return family
    if fetch.offline():
        raise ModelLoadError(f"{role} {repo_id!r} is not in the local cache (HF_HUB_OFFLINE is set), so its "
                                f"kind cannot be read from its files: fetch it with `promptpaint models fetch "
                                f"{repo_id}` where the hub is reachable, or pass a local folder", [repo_id])
    try:
        listing = fetch.repo_files(repo_id)
        for name, read in (("model_index.json", family_from_model_index), ("config.json", family_from_config)):
            if name in listing:
                return read(json.loads(fetch.download_file(repo_id, name).read_text()))
    except UnknownFamily as error:
        raise ModelLoadError(f"{repo_id!r} is {error}, which promptpaint does not support") from None
    except Exception as error:  # noqa: BLE001 - every hub failure becomes one line
        raise hub_error(repo_id, error, role) from None
    if any(n.endswith(".onnx") and "/" not in n for n in listing):
        return "lama"
    raise ModelLoadError(f"{repo_id!r} has no config.json, model_index.json or .onnx file at its root: "
                         "promptpaint cannot tell what kind of model it is")


def hub_error(repo_id: str, error: Exception, role: str = "model", name: str | None = None) -> ModelLoadError:
    """One line for a failed hub call: unknown repository, gated, or no network. ``name`` is what
    the user typed (an alias), used in the suggested command."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    name = name or repo_id
    label = repr(repo_id) if name == repo_id else f"{name} ({repo_id})"

    if isinstance(error, GatedRepoError):
        return ModelLoadError(f"{role} {label} is gated: accept its licence on huggingface.co, log in "
                              "(`hf auth login` or HF_TOKEN) and `promptpaint models fetch` it, or pass a local "
                              "folder", [repo_id])
    if isinstance(error, RepositoryNotFoundError):
        return ModelLoadError(f"{role} {repo_id!r} does not exist on the Hugging Face hub (check the name) "
                              "and is not a local folder")
    return ModelLoadError(f"{role} {label} is not downloaded and the hub is unreachable "
                          f"({type(error).__name__}): fetch it with `promptpaint models fetch {name}` where "
                          "the hub is reachable, or pass a local folder", [repo_id])


# ------------------------------------------------------------------------ on disk, or not

def folder_on_disk(ref: ModelRef) -> Path | None:
    """The complete local folder of a model, or None (a hub model not (fully) in the cache)."""
    if ref.is_local:
        return Path(ref.source)
    folder = fetch.snapshot_folder(ref.source)
    if folder is None or fetch.missing_pieces(folder, ref.layout, ref.pinned):
        return None
    return folder


@dataclass(frozen=True)
class Missing:
    """A model a command needs that is not on this machine."""

    role: str
    name: str  # as the user gave it
    ref: ModelRef | None  # None when it could not even be resolved (a hub id not in the cache)
    reason: str = ""

    def describe(self) -> str:
        where = self.ref.source if self.ref is not None and self.ref.source != self.name else ""
        detail = ", ".join(x for x in (where, "gated" if self.gated else "", self.reason) if x)
        return f"{self.role} {self.name}" + (f" ({detail})" if detail else "")

    @property
    def fetchable(self) -> bool:
        return self.ref is not None or bool(_HUB_ID.match(self.name))

    @property
    def gated(self) -> bool:
        return bool(self.ref and self.ref.entry and self.ref.entry.gated)


def find_missing(needs: Iterable[tuple[str, str]]) -> tuple[list[ModelRef], list[Missing]]:
    """Resolve each (role, name) and split them into refs whose files are here and those missing.
    Errors other than "not here" (an unknown alias, a model of the wrong kind) raise at once."""
    present: list[ModelRef] = []
    missing: list[Missing] = []
    for role, name in needs:
        try:
            ref = resolve(name, _allowed(role), role)
        except ModelLoadError as error:
            if not error.missing:
                raise
            reason = _short_reason(error)
            missing.append(Missing(role, name, None, reason if reason in (NO_FOLDER, UNREACHABLE) else ""))
            continue
        if ref.downloads and folder_on_disk(ref) is None:
            missing.append(Missing(role, name, ref))
        else:
            present.append(ref)
    return present, missing


def known_family(name: str) -> str | None:
    """A model's family when it can be told without the hub (alias, folder, cached hub id), else None."""
    try:
        return resolve(name).family
    except (ModelLoadError, InvalidOptionError):
        return None


def require(needs: Iterable[tuple[str, str]], *, half: bool | Callable[[], bool] = False,
            download: bool | None = None) -> list[ModelRef]:
    """The preflight: resolve every (role, name) a command needs and make sure each model is on
    disk, before any slow import. Where the hub is reachable (``download`` defaults to "not
    offline"), missing ones are downloaded; whatever is still missing is named in ONE
    :class:`ModelLoadError` with the ``promptpaint models fetch`` command that fixes it."""
    needs = list(dict.fromkeys((role, str(name).strip()) for role, name in needs))
    present, missing = find_missing(needs)
    if missing and (not fetch.offline() if download is None else download):
        failed: list[Missing] = []
        for item in missing:
            if item.reason or (failed and failed[-1].reason == UNREACHABLE):  # one network timeout is enough
                failed.append(Missing(item.role, item.name, item.ref, item.reason or UNREACHABLE))
                continue
            try:
                get(item.ref or resolve(item.name, _allowed(item.role), item.role), half=half, role=item.role)
            except ModelLoadError as error:
                failed.append(Missing(item.role, item.name, item.ref, _short_reason(error)))
        if not failed:
            return find_missing(needs)[0]
        missing = failed
    if missing:
        raise missing_error(missing)
    return present


def _short_reason(error: Exception) -> str:
    text = str(error)
    for key, reason in (("gated", "gated: log in first"), ("unreachable", UNREACHABLE),
                        ("does not exist", "not on the hub"), ("nor an existing folder", NO_FOLDER)):
        if key in text:
            return reason
    return text[:120]


def missing_error(missing: list[Missing]) -> ModelLoadError:
    """One line naming every missing model and the command that fetches them."""
    names = list(dict.fromkeys(m.name for m in missing if m.fetchable))
    sizes = [m.ref.entry.size for m in missing if m.ref and m.ref.entry]
    what = "; ".join(m.describe() for m in missing)
    count = f"{len(missing)} models are" if len(missing) > 1 else "a model is"
    message = f"{count} not on this machine: {what}"
    if names:
        size = f" ({fetch.human_size(sum(sizes))})" if sizes else ""
        message += (f"; fetch {'them' if len(names) > 1 else 'it'} with `promptpaint models fetch "
                    f"{' '.join(names)}`{size} where the hub is reachable")
    if any(m.gated for m in missing):
        message += " (gated models: accept the licence on huggingface.co and log in first)"
    message += ", or pass local folders" if len(missing) > 1 else ", or pass a local folder"
    if fetch.offline():
        message += " [HF_HUB_OFFLINE is set]"
    return ModelLoadError(message, [m.name for m in missing])


def get(ref: ModelRef, *, half: bool | Callable[[], bool] = False, progress: bool = False,
        role: str = "model") -> Path:
    """Download what promptpaint reads of a hub model (if not already here); returns its folder.
    ``half`` may be a callable (it may import torch): it is asked only once the hub answered."""
    folder = folder_on_disk(ref)
    if folder is not None:
        return folder
    if fetch.offline():
        raise missing_error([Missing(role, ref.name, ref)])
    try:
        fetch.download(ref.source, ref.layout, half, progress=progress, pinned=ref.pinned)
    except FileNotFoundError as error:
        raise ModelLoadError(str(error)) from None
    except Exception as error:  # noqa: BLE001 - network, auth, disk: one line each
        raise hub_error(ref.source, error, role, ref.name) from None
    folder = folder_on_disk(ref)
    if folder is None:
        raise ModelLoadError(f"{ref.source!r} was downloaded but is still incomplete")
    return folder


def local_folder(ref: ModelRef) -> Path:
    """A local folder holding the model: the folder itself, the cached snapshot, or a fresh
    download where the hub is reachable."""
    if ref.is_local:
        return Path(ref.source)
    return get(ref)


# ---------------------------------------------------------------- the process-wide cache

T = TypeVar("T")
_cache: dict[tuple, Any] = {}
_cache_lock = threading.Lock()


def cached(key: tuple, build: Callable[[], T]) -> T:
    """Build a model once per process and key (e.g. (family, folder, device, dtype))."""
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    value = build()  # built outside the lock: loading can take long
    with _cache_lock:
        return _cache.setdefault(key, value)


def clear_cache() -> None:
    """Forget every loaded model (frees memory once nothing else refers to them)."""
    with _cache_lock:
        _cache.clear()


def first_line(error: Exception) -> str:
    """A library error's first line (at most 300 characters), or its type when it has no message."""
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__


def load_error(ref: ModelRef, error: Exception) -> ModelLoadError:
    """Wrap a library's loading error into one line naming the model."""
    return ModelLoadError(f"could not load {ref.family} model {ref.source!r}: {first_line(error)}")
