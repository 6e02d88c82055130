"""Batch editing: one recipe over a folder, a glob or a manifest, resumable, on one machine or Ray.

    from promptpaint.batch import BatchSettings, run_batch
    summary = run_batch(BatchSettings("products/", "new-background.yaml", "out/"))

Item logic (finding items, output names, seeds, reading/editing/writing one item, manifest rows)
is shared; the engines only schedule: :mod:`.local` (threads around one Pipeline) and
:mod:`.ray_engine` (a Ray Data actor pool). See docs/batch.md for the manifest and resume rules.

Nothing heavy is imported here: torch and ray load inside the engines.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptpaint.batch.items import BatchItem, discover, item_seed
from promptpaint.batch.results import (DONE, FAILED, MANIFEST_NAME, ResultsWriter, done_inputs, manifest_path,
                                       read_rows, remove_stale_temporaries)
from promptpaint.batch.worker import WorkerConfig
from promptpaint.errors import InvalidOptionError

ENGINES = ("local", "ray")

__all__ = ["BatchItem", "BatchSettings", "BatchSummary", "ENGINES", "MANIFEST_NAME", "discover", "item_seed",
           "read_rows", "run_batch"]


@dataclass
class BatchSettings:
    input: str
    recipe: Any  # path, YAML/JSON text, dict or Recipe (as for `promptpaint run`)
    out_dir: str
    engine: str = "local"
    ray_address: str | None = None
    workers: int | None = None
    batch_size: int | None = None
    resume: bool = False
    fail_fast: bool = False
    overwrite: bool = False
    fmt: str = "png"
    models: dict[str, Any] = field(default_factory=dict)  # ModelOptions fields given by the user
    progress: bool | None = None  # None: a bar when stderr is a terminal


@dataclass
class BatchSummary:
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    stopped: bool = False  # --fail-fast stopped the run early
    manifest: Path | None = None

    @property
    def images_per_minute(self) -> float:
        return 60.0 * self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """0 when every item is done (now or earlier), 1 when any failed."""
        return 1 if self.failed else 0

    def line(self) -> str:
        text = (f"{self.done} done, {self.skipped} skipped, {self.failed} failed in {self.seconds:.1f} s "
                f"({self.images_per_minute:.1f} images/min); results in {self.manifest}")
        if self.stopped:
            unfinished = self.total - self.done - self.skipped - self.failed
            text += f"; stopped at the first failure (--fail-fast), {unfinished} not done"
        return text


def run_batch(settings: BatchSettings) -> BatchSummary:
    """Plan (validate everything before loading a model), skip what is done, run the engine."""
    from promptpaint.options import ModelOptions, parse_options
    from promptpaint.pipeline.recipe import load_recipe

    _check_settings(settings)
    recipe = load_recipe(settings.recipe)
    models = {**recipe.pipeline, **settings.models}
    parse_options(ModelOptions, models)
    out_dir = Path(settings.out_dir)
    items = discover(settings.input, out_dir, settings.fmt)
    _check_earlier_run(out_dir, settings)
    config = WorkerConfig(recipe.to_dict(), str(out_dir), models, overwrite=settings.overwrite or settings.resume,
                          batch_size=settings.batch_size)
    with ResultsWriter(out_dir) as results:
        remove_stale_temporaries(out_dir)  # left by a killed run; no other run can be writing (lock)
        finished = done_inputs(out_dir) if settings.resume else set()
        todo = [item for item in items if item.input not in finished]
        summary = BatchSummary(total=len(items), skipped=len(items) - len(todo), manifest=results.path)
        started = time.perf_counter()
        with _ItemBar(len(todo), settings.progress) as progress:
            def record(row: dict[str, Any]) -> bool:
                results.append(row)
                progress.count(row, summary)
                keep_going = not (settings.fail_fast and row["status"] == FAILED)
                summary.stopped = summary.stopped or not keep_going
                return keep_going

            if todo:
                _run_engine(todo, config, record, settings)
    summary.seconds = time.perf_counter() - started
    return summary


def _check_settings(settings: BatchSettings) -> None:
    if settings.engine not in ENGINES:
        raise InvalidOptionError(f"--engine must be one of {', '.join(ENGINES)}, got {settings.engine!r}")
    if settings.resume and settings.overwrite:
        raise InvalidOptionError("use --resume (finish an earlier run) or --overwrite (redo everything), not both")
    for name in ("workers", "batch_size"):
        value = getattr(settings, name)
        if value is not None and value < 1:
            raise InvalidOptionError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if settings.engine == "local" and (settings.workers or 1) > 1:
        raise InvalidOptionError("the local engine runs one model worker; use --engine ray --workers N for more")
    if settings.engine == "local" and settings.ray_address:
        raise InvalidOptionError("--ray-address needs --engine ray")


def _check_earlier_run(out_dir: Path, settings: BatchSettings) -> None:
    """Never mix two runs' results silently: an existing manifest needs --resume or --overwrite."""
    if settings.resume or settings.overwrite:
        return
    rows = read_rows(manifest_path(out_dir))
    if rows:
        raise InvalidOptionError(f"{out_dir} holds the results of an earlier run ({len(rows)} rows in "
                                 f"{MANIFEST_NAME}); pass --resume to finish it or --overwrite to redo everything")


def _run_engine(todo: list[BatchItem], config: WorkerConfig, record, settings: BatchSettings) -> None:
    if settings.engine == "ray":
        from promptpaint.batch.ray_engine import run_ray

        run_ray(todo, config, record, address=settings.ray_address, workers=settings.workers,
                batch_size=settings.batch_size)
    else:
        from promptpaint.batch.local import run_local

        run_local(todo, config, record)


class _ItemBar:
    """A tqdm bar with ETA on stderr (hidden when stderr is no terminal); counts rows thread-safely."""

    def __init__(self, total: int, enabled: bool | None):
        from tqdm import tqdm

        show = sys.stderr.isatty() if enabled is None else enabled
        self.bar = tqdm(total=total, unit="img", file=sys.stderr, disable=not show, dynamic_ncols=True)
        self.lock = threading.Lock()

    def count(self, row: dict[str, Any], summary: BatchSummary) -> None:
        with self.lock:
            if row["status"] == DONE:
                summary.done += 1
            else:
                summary.failed += 1
                self.bar.set_postfix(failed=summary.failed, refresh=False)
            self.bar.update(1)

    def __enter__(self) -> _ItemBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
