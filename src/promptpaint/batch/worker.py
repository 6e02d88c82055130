"""One item, start to finish: read -> edit -> write -> manifest row. Shared by both engines.

The three stages are separate methods so the local engine can run them on three threads (decode
ahead, model in the middle, encode behind) while a Ray actor calls :meth:`ItemWorker.process_many`.
No stage raises for a bad item: its error travels with the task and ends up in the row. A model that
cannot be loaded (:class:`ModelLoadError`) is no item's fault and stops the run instead.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from promptpaint.batch.items import BatchItem, contained_path, item_seed
from promptpaint.batch.results import DONE, FAILED
from promptpaint.errors import ModelLoadError, NothingFoundError, PromptPaintError

log = logging.getLogger(__name__)


#: images edited together (batched model calls) without --batch-size: on a GPU a batch keeps it busy;
#: on a CPU full-size models gain nothing from it (measured: two SD crops 70.6 s batched, 70.1 s alone),
#: so there each image is edited alone and replays bit for bit with `promptpaint run`.
GPU_BATCH_SIZE = 4
CPU_BATCH_SIZE = 1


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs, as plain JSON-able values (it travels to Ray actors)."""

    recipe: dict[str, Any]  # Recipe.to_dict() of the batch's recipe
    out_dir: str
    models: dict[str, Any] = field(default_factory=dict)  # ModelOptions fields
    overwrite: bool = False  # replace outputs that exist (--overwrite, and --resume for unfinished items)
    batch_size: int | None = None  # images edited together (--batch-size); None: by device

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls(**json.loads(text))


@dataclass
class ItemTask:
    """An item on its way through the stages (read, edit, write)."""

    item: BatchItem
    recipe: Any = None  # promptpaint.pipeline.recipe.Recipe, seeds filled in
    image: Any = None  # LoadedImage
    result: Any = None  # EditResult
    error: Exception | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return [edit.seed for edit in self.recipe.edits] if self.recipe is not None else []


class ItemWorker:
    """Loads the models once (one Pipeline) and processes items, editing them ``batch_size`` at a time."""

    def __init__(self, config: WorkerConfig):
        from promptpaint.pipeline.pipeline import Pipeline

        self.config = config
        self.pipeline = Pipeline(**config.models)

    @property
    def batch_size(self) -> int:
        """How many images to edit together: --batch-size, else by the device the models run on."""
        if self.config.batch_size:
            return self.config.batch_size
        return GPU_BATCH_SIZE if self.pipeline.device == "cuda" else CPU_BATCH_SIZE

    def process_many(self, items: list[BatchItem]) -> list[dict[str, Any]]:
        """Read, edit (``batch_size`` at a time) and write the items, as a Ray actor does."""
        return [self.write(task) for task in self.edit_many([self.read(item) for item in items])]

    def read(self, item: BatchItem) -> ItemTask:
        """Parse the item's recipe (row overrides, stable seeds), then decode the image."""
        from promptpaint.core.images import load_image

        task = ItemTask(item)
        with _stage(task, "read"):
            task.recipe = item_recipe(self.config.recipe, item)
            task.image = load_image(item.source)
        return task

    def edit(self, task: ItemTask) -> ItemTask:
        if task.error is None:
            with _stage(task, "edit"):
                task.result = self.pipeline.run(task.image, task.recipe)
        return task

    def edit_many(self, tasks: list[ItemTask]) -> list[ItemTask]:
        """Edit the tasks ``batch_size`` at a time (batched model calls, see ``Pipeline.run_many``);
        each task's ``edit`` time is its share of its batch's."""
        ready = [task for task in tasks if task.error is None]
        if self.batch_size == 1 or len(ready) <= 1:
            return [self.edit(task) for task in tasks]
        for start in range(0, len(ready), self.batch_size):
            self._edit_together(ready[start:start + self.batch_size])
        return tasks

    def _edit_together(self, ready: list[ItemTask]) -> None:
        started = time.perf_counter()
        outcomes = self.pipeline.run_many([(task.image, task.recipe) for task in ready], batch_size=len(ready))
        share = round((time.perf_counter() - started) / len(ready), 4)
        for task, outcome in zip(ready, outcomes):
            task.timings["edit"] = share
            if isinstance(outcome, Exception):
                task.error = outcome
                if not isinstance(outcome, PromptPaintError):
                    log.info("%s: edit failed", task.item.input, exc_info=outcome)
            else:
                task.result = outcome

    def write(self, task: ItemTask) -> dict[str, Any]:
        """Write every variant atomically, then describe the task as a manifest row."""
        outputs: list[str] = []
        if task.error is None:
            with _stage(task, "write"):
                outputs = self._save(task)
        return manifest_row(task, outputs)

    def _save(self, task: ItemTask) -> list[str]:
        from promptpaint.core.images import atomic_write_bytes, format_for_path
        from promptpaint.pipeline.output import check_outputs, encode_variant, variant_paths

        result = task.result
        names = variant_paths(task.item.output, len(result.variants))
        for i, name in enumerate(names):
            path = contained_path(self.config.out_dir, name)
            check_outputs([path], inputs=[task.item.source], overwrite=self.config.overwrite)
            atomic_write_bytes(path, encode_variant(result, i, format_for_path(path)))
        return names


def item_recipe(recipe: dict[str, Any], item: BatchItem):
    """The batch recipe with the item's row overrides; edits without a seed get a stable one."""
    from promptpaint.pipeline.recipe import Recipe, load_recipe

    parsed = load_recipe(recipe, overrides=item.overrides)
    edits = [edit if edit.seed is not None else edit.model_copy(update={"seed": item_seed(item.input, i)})
             for i, edit in enumerate(parsed.edits)]
    return Recipe(edits, parsed.pipeline)


def manifest_row(task: ItemTask, outputs: list[str]) -> dict[str, Any]:
    seeds = task.seeds
    timings = dict(task.timings)
    timings["total"] = round(sum(timings.values()), 4)
    return {
        "input": task.item.input,
        "missing": _missing(task),
        "source": task.item.source,
        "output": outputs[0] if outputs else None,
        "outputs": outputs,
        "status": FAILED if task.error is not None else DONE,
        "error": describe_error(task.error) if task.error is not None else None,
        "error_type": type(task.error).__name__ if task.error is not None else None,
        "seed": seeds[0] if seeds else None,
        "seeds": seeds,
        "timings": timings,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }


def _missing(task: ItemTask) -> list[str]:
    """The item's phrases that found nothing: the edit went on without them, or (failed with
    NothingFoundError) nothing at all was found."""
    from promptpaint.pipeline.recipe import missing_phrases

    if isinstance(task.error, NothingFoundError):
        return list(task.error.labels)
    return missing_phrases(task.result.recipe) if task.result is not None else []


def describe_error(error: BaseException) -> str:
    """One line: the message of a library error, type and message of anything else."""
    text = str(error) if isinstance(error, PromptPaintError) else f"{type(error).__name__}: {error}"
    return " ".join(text.split())


@contextmanager
def _stage(task: ItemTask, name: str) -> Iterator[None]:
    """Time a stage; an exception becomes the task's error instead of stopping the batch."""
    started = time.perf_counter()
    try:
        yield
    except ModelLoadError:
        raise  # not the item's fault: every item would fail the same way, so the run stops
    except Exception as error:  # one bad item must not end the run
        task.error = error
        if not isinstance(error, PromptPaintError):  # an unexpected error: keep the traceback for -v
            log.info("%s: %s failed", task.item.input, name, exc_info=error)
    finally:
        task.timings[name] = round(time.perf_counter() - started, 4)
