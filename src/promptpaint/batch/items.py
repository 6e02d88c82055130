"""What a batch works on: the item list from a folder, a glob or a manifest, and safe output names.

Every item has an ``input`` (its identity in the results manifest: the path relative to the input
root, or the absolute path of an image that lies outside it), the ``source`` file to read, the
``output`` path relative to OUTDIR, and the recipe fields its manifest row overrides.

Output names mirror the input's relative path with the suffix changed (``a/b.jpg`` -> ``a/b.png``).
They can never leave OUTDIR: a manifest row that names an image outside the manifest's folder
(an absolute path, or ``../..``) is still read, but its output goes to
``_external/<8 hex digits of the source path>/<name>.png``; every name is checked again against the
resolved OUTDIR just before writing (see :func:`contained_path`). Two inputs that would share an
output (``a.jpg`` and ``a.png``) both keep their old suffix in the name (``a_jpg.png``, ``a_png.png``).

Pure standard library: nothing heavy is imported here.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from promptpaint.errors import InvalidOptionError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"})
MANIFEST_SUFFIXES = frozenset({".jsonl", ".csv"})
OUTPUT_SUFFIXES = {"png": ".png", "jpg": ".jpg", "webp": ".webp"}
EXTERNAL_DIR = "_external"
IMAGE_COLUMN = "image"
#: manifest columns that are not recipe fields (``op`` would turn one edit into another)
_FORBIDDEN_COLUMNS = {"op"}


@dataclass(frozen=True)
class BatchItem:
    input: str
    source: str
    output: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BatchItem:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class _Found:
    """An image before its output name is chosen."""

    input: str
    source: str
    external: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- discovery
def discover(spec: str | os.PathLike, out_dir: str | os.PathLike, fmt: str = "png") -> list[BatchItem]:
    """The items of INPUT (a folder, a glob, a JSONL/CSV manifest or one image), outputs assigned.

    Folders and globs are listed in sorted order; manifests keep their row order."""
    if fmt not in OUTPUT_SUFFIXES:
        raise InvalidOptionError(f"--format must be one of {', '.join(OUTPUT_SUFFIXES)}, got {fmt!r}")
    path = Path(spec)
    out_dir = Path(out_dir)
    if path.is_dir():
        _check_not_same(path, out_dir)
        found = sorted(_folder(path, out_dir), key=lambda f: f.input)
    elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        found = list(_manifest(path))
    elif path.is_file():
        found = [_Found(path.name, str(path.absolute()))]
    elif glob.has_magic(str(spec)):
        found = sorted(_glob(str(spec), out_dir), key=lambda f: f.input)
    else:
        raise InvalidOptionError(f"input not found: {spec} (give a folder, a glob, a .jsonl/.csv manifest or an image)")
    if not found:
        raise InvalidOptionError(f"no images in {spec} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    items = _assign_outputs(found, OUTPUT_SUFFIXES[fmt])
    _check_inputs_untouched(items, out_dir)
    return items


def _is_image_name(name: str) -> bool:
    # Hidden files are skipped: our own temporary files, macOS "._x.jpg" resource forks.
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def _folder(root: Path, out_dir: Path) -> Iterator[_Found]:
    skip = out_dir.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Outputs written inside the input folder must not become inputs of the next run.
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() != skip)
        for name in sorted(filenames):
            if _is_image_name(name):
                rel = (here / name).relative_to(root).as_posix()
                yield _Found(rel, str((here / name).absolute()))


def _glob(pattern: str, out_dir: Path) -> Iterator[_Found]:
    base = _glob_base(pattern)
    skip = out_dir.resolve()
    for match in sorted(glob.glob(pattern, recursive=True)):
        path = Path(match)
        if path.is_file() and _is_image_name(path.name) and not path.resolve().is_relative_to(skip):
            yield _Found(path.relative_to(base).as_posix(), str(path.absolute()))


def _glob_base(pattern: str) -> Path:
    """The folder a glob's results are relative to: its leading parts without wildcards."""
    parts = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(".")


def _check_not_same(root: Path, out_dir: Path) -> None:
    if root.resolve() == out_dir.resolve():
        raise InvalidOptionError(f"the output folder is the input folder ({root}); choose another -o")


# ------------------------------------------------------------------------------------- manifests
def edit_fields() -> set[str]:
    """Recipe fields a manifest row may override (those of any operation)."""
    from promptpaint.operations import option_fields

    return option_fields() - _FORBIDDEN_COLUMNS


def _manifest(path: Path) -> Iterator[_Found]:
    folder = path.parent.absolute()
    allowed = edit_fields()
    seen: dict[str, str] = {}
    for line, row in _manifest_rows(path):
        where = f"{path.name} line {line}"
        unknown = sorted(set(row) - allowed - {IMAGE_COLUMN})
        if unknown:
            raise InvalidOptionError(f"{where}: unknown column {unknown[0]!r}; use {IMAGE_COLUMN!r} and recipe "
                                     "fields such as prompt, seed, find, keep")
        image = row.pop(IMAGE_COLUMN, None)
        if not isinstance(image, str) or not image.strip():
            raise InvalidOptionError(f"{where}: no {IMAGE_COLUMN!r} (the image to edit)")
        found = _manifest_image(image.strip(), folder, row)
        if found.input in seen:
            raise InvalidOptionError(f"{where}: {image} is already listed ({seen[found.input]}); "
                                     "list each image once")
        seen[found.input] = where
        yield found


def _manifest_image(image: str, folder: Path, overrides: dict[str, Any]) -> _Found:
    """Relative names are relative to the manifest's folder; the source is normalised lexically
    (symlinked subfolders stay "inside")."""
    written = image.replace("\\", "/")  # manifests written on Windows
    source = Path(os.path.normpath(folder / written))
    if isinstance(overrides.get("mask"), str) and not Path(overrides["mask"]).is_absolute():
        overrides["mask"] = str(folder / overrides["mask"])
    if source.is_relative_to(folder):
        return _Found(source.relative_to(folder).as_posix(), str(source), False, overrides)
    return _Found(str(source), str(source), True, overrides)


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row with empty cells left out) for a CSV or JSONL manifest."""
    try:
        if path.suffix.lower() == ".csv":
            yield from _csv_rows(path)
        else:
            yield from _jsonl_rows(path)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InvalidOptionError(f"cannot read manifest {path}: {error}") from None


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        for row in reader:
            if None in row:
                raise InvalidOptionError(f"{path.name} line {reader.line_num}: more cells than columns")
            cells = {k.strip(): v for k, v in row.items() if k and v not in (None, "")}
            if cells:
                yield reader.line_num, cells


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as error:
                raise InvalidOptionError(f"{path.name} line {number}: not JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise InvalidOptionError(f"{path.name} line {number}: each line must be a JSON object")
            yield number, {k: v for k, v in row.items() if v is not None}


# ------------------------------------------------------------------------------------- outputs
def safe_relative(path: str) -> str:
    """A relative POSIX path with no root, no ``..`` and no control characters."""
    parts = []
    for part in PurePosixPath(path.replace("\\", "/")).parts:
        if part in ("/", "", "."):
            continue
        if part == "..":
            raise InvalidOptionError(f"unsafe output name {path!r}: '..' is not allowed")
        parts.append("".join(ch if ch.isprintable() else "_" for ch in part))
    if not parts:
        raise InvalidOptionError(f"unsafe output name {path!r}: empty")
    return "/".join(parts)


def contained_path(out_dir: str | os.PathLike, relative: str) -> Path:
    """OUTDIR/relative, refused if it resolves outside OUTDIR (``..``, a symlink in OUTDIR)."""
    root = Path(out_dir).resolve()
    target = (root / safe_relative(relative)).resolve()
    if target == root or not target.is_relative_to(root):
        raise InvalidOptionError(f"output {relative!r} would be written outside {out_dir}; refused")
    return target


def _output_name(found: _Found, suffix: str) -> str:
    if found.external:
        digest = hashlib.blake2b(found.source.encode(), digest_size=4).hexdigest()
        return f"{EXTERNAL_DIR}/{digest}/{safe_relative(PurePosixPath(found.source).stem)}{suffix}"
    return safe_relative(str(PurePosixPath(found.input).with_suffix(suffix)))


def _assign_outputs(found: list[_Found], suffix: str) -> list[BatchItem]:
    names = [_output_name(f, suffix) for f in found]
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name.casefold(), []).append(i)  # case-insensitive file systems too
    for members in groups.values():
        if len(members) > 1:
            for i in members:
                old = PurePosixPath(found[i].source).suffix.lstrip(".").lower()
                stem = PurePosixPath(names[i]).with_suffix("")
                names[i] = f"{stem}_{old}{suffix}"
    taken: dict[str, int] = {}
    for i, name in enumerate(names):
        if name.casefold() in taken:
            other = found[taken[name.casefold()]].input
            raise InvalidOptionError(f"{found[i].input} and {other} would both be written to {name}; rename one")
        taken[name.casefold()] = i
    return [BatchItem(f.input, f.source, name, f.overrides) for f, name in zip(found, names)]


def _check_inputs_untouched(items: list[BatchItem], out_dir: Path) -> None:
    """Refuse a plan where an output would land on an input (OUTDIR overlapping the inputs)."""
    sources = {os.path.normcase(os.path.realpath(item.source)) for item in items}
    for item in items:
        target = os.path.normcase(os.path.realpath(out_dir / item.output))
        if target in sources:
            raise InvalidOptionError(f"the output of {item.input} would overwrite the input {target}; "
                                     "choose another -o")


def item_seed(key: str, index: int = 0) -> int:
    """A stable seed for an item's edit number ``index``: re-runs reproduce the same images."""
    digest = hashlib.blake2b(f"{key}\0{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 2**31
