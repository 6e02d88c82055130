"""The results manifest, ``OUTDIR/manifest.jsonl``: one JSON object per finished item.

A row is appended (one ``write``, then ``fsync``) only after the item's output file is fully and
atomically written, so a run killed at any moment leaves at worst an output without a row; that
item is simply done again on ``--resume`` (same seed, same pixels). A kill in the middle of an
append leaves a torn last line: readers skip lines that are not JSON, and the next append first
ends that line.

Several rows may name the same input (a failed item retried, a run repeated with --overwrite):
**the last row per input wins**.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from promptpaint.errors import PromptPaintError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, one run per OUTDIR is then up to the user
    fcntl = None

MANIFEST_NAME = "manifest.jsonl"
DONE, FAILED = "done", "failed"
#: what ``core.images.atomic_write_bytes`` names its temporary files: ``.<name>.<8 random>.tmp``
_TEMPORARY = re.compile(r"^\..+\.(png|jpg|webp)\.[A-Za-z0-9_]{8}\.tmp$")


def manifest_path(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / MANIFEST_NAME


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete row, in order; torn or foreign lines are skipped."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    rows = []
    for line in data.splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(row, dict) and isinstance(row.get("input"), str):
            rows.append(row)
    return rows


def latest_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """input -> its last row (the dedup rule)."""
    return {row["input"]: row for row in rows}


def done_inputs(out_dir: str | os.PathLike) -> set[str]:
    """Inputs whose last row says done and whose outputs are all still there (deleted ones are redone)."""
    root = Path(out_dir)
    done = set()
    for key, row in latest_rows(read_rows(manifest_path(root))).items():
        outputs = row.get("outputs") or ([row["output"]] if row.get("output") else [])
        if row.get("status") == DONE and outputs and all((root / o).is_file() for o in outputs):
            done.add(key)
    return done


def remove_stale_temporaries(out_dir: str | os.PathLike) -> int:
    """Delete the temporary files an atomic write leaves behind when its process is killed.

    Call it only while holding the :class:`ResultsWriter` lock (no other run writes there)."""
    removed = 0
    for path in Path(out_dir).rglob(".*.tmp"):
        if _TEMPORARY.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


class ResultsWriter:
    """Appends rows durably; safe to call from several threads.

    Holds an exclusive lock on the manifest while open, so two runs can never share an OUTDIR
    (the kernel drops the lock when a process dies, even by SIGKILL)."""

    def __init__(self, out_dir: str | os.PathLike):
        self.path = manifest_path(out_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise PromptPaintError(f"another batch is running into {self.path.parent}; wait for it or "
                                   "choose another -o") from None
        self._end_torn_line()

    def _end_torn_line(self) -> None:
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, "rb") as handle:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":
                    os.write(self._fd, b"\n")

    def append(self, row: dict[str, Any]) -> None:
        line = (json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            view = memoryview(line)
            while view:  # O_APPEND: each write lands at the end; a regular file takes it whole
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
