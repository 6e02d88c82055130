"""One item, start to finish: read -> edit -> write -> manifest row. Shared by both engines.

The three stages are separate methods so the local engine can run them on three threads (decode
ahead, model in the middle, encode behind) while a Ray actor calls :meth:`ItemWorker.process_many`.
No stage raises for a bad item: its error travels with the job and ends up in the row. A model that
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
from pathlib import PurePosixPath
from typing import Any

from promptpaint.batch.items import BatchItem, contained_path, item_seed
from promptpaint.batch.results import DONE, FAILED
from promptpaint.errors import ModelLoadError, PromptPaintError

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
class Job:
    """An item on its way through the stages."""

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
        return [self.write(job) for job in self.edit_many([self.read(item) for item in items])]

    def read(self, item: BatchItem) -> Job:
        """Parse the item's recipe (row overrides, stable seeds), then decode the image."""
        from promptpaint.core.images import load_image

        job = Job(item)
        with _stage(job, "read"):
            job.recipe = item_recipe(self.config.recipe, item)
            job.image = load_image(item.source)
        return job

    def edit(self, job: Job) -> Job:
        if job.error is None:
            with _stage(job, "edit"):
                job.result = self.pipeline.run(job.image, job.recipe)
        return job

    def edit_many(self, jobs: list[Job]) -> list[Job]:
        """Edit the jobs ``batch_size`` at a time (batched model calls, see ``Pipeline.run_many``);
        each job's ``edit`` time is its share of its batch's."""
        ready = [job for job in jobs if job.error is None]
        if self.batch_size == 1 or len(ready) <= 1:
            return [self.edit(job) for job in jobs]
        for start in range(0, len(ready), self.batch_size):
            self._edit_together(ready[start:start + self.batch_size])
        return jobs

    def _edit_together(self, ready: list[Job]) -> None:
        started = time.perf_counter()
        outcomes = self.pipeline.run_many([(job.image, job.recipe) for job in ready], batch_size=len(ready))
        share = round((time.perf_counter() - started) / len(ready), 4)
        for job, outcome in zip(ready, outcomes):
            job.timings["edit"] = share
            if isinstance(outcome, Exception):
                job.error = outcome
                if not isinstance(outcome, PromptPaintError):
                    log.info("%s: edit failed", job.item.input, exc_info=outcome)
            else:
                job.result = outcome

    def write(self, job: Job) -> dict[str, Any]:
        """Write every variant atomically, then describe the job as a manifest row."""
        outputs: list[str] = []
        if job.error is None:
            with _stage(job, "write"):
                outputs = self._save(job)
        return manifest_row(job, outputs)

    def _save(self, job: Job) -> list[str]:
        from promptpaint.core.images import save_image
        from promptpaint.pipeline.recipe import recipe_metadata, variant_recipe

        result = job.result
        names = variant_names(job.item.output, len(result.variants))
        for i, (name, rgb) in enumerate(zip(names, result.variants)):
            save_image(contained_path(self.config.out_dir, name), rgb, result.alpha,
                       metadata=recipe_metadata(variant_recipe(result.recipe, i)),
                       overwrite=self.config.overwrite, protect=[job.item.source],
                       icc_profile=job.image.icc_profile)
        return names


def item_recipe(recipe: dict[str, Any], item: BatchItem):
    """The batch recipe with the item's row overrides; edits without a seed get a stable one."""
    from promptpaint.pipeline.recipe import Recipe, load_recipe

    parsed = load_recipe(recipe, overrides=item.overrides)
    edits = [edit if edit.seed is not None else edit.model_copy(update={"seed": item_seed(item.input, i)})
             for i, edit in enumerate(parsed.edits)]
    return Recipe(edits, parsed.pipeline)


def variant_names(output: str, count: int) -> list[str]:
    """``a/b.png`` for one variant; ``a/b_0.png``, ``a/b_1.png``... for several (as ``promptpaint run``)."""
    if count == 1:
        return [output]
    path = PurePosixPath(output)
    return [str(path.with_name(f"{path.stem}_{i}{path.suffix}")) for i in range(count)]


def manifest_row(job: Job, outputs: list[str]) -> dict[str, Any]:
    seeds = job.seeds
    timings = dict(job.timings)
    timings["total"] = round(sum(timings.values()), 4)
    return {
        "input": job.item.input,
        "source": job.item.source,
        "output": outputs[0] if outputs else None,
        "outputs": outputs,
        "status": FAILED if job.error is not None else DONE,
        "error": describe_error(job.error) if job.error is not None else None,
        "error_type": type(job.error).__name__ if job.error is not None else None,
        "seed": seeds[0] if seeds else None,
        "seeds": seeds,
        "timings": timings,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    }


def describe_error(error: BaseException) -> str:
    """One line: the message of a library error, type and message of anything else."""
    text = str(error) if isinstance(error, PromptPaintError) else f"{type(error).__name__}: {error}"
    return " ".join(text.split())


@contextmanager
def _stage(job: Job, name: str) -> Iterator[None]:
    """Time a stage; an exception becomes the job's error instead of stopping the batch."""
    started = time.perf_counter()
    try:
        yield
    except ModelLoadError:
        raise  # not the item's fault: every item would fail the same way, so the run stops
    except Exception as error:  # one bad item must not end the run
        job.error = error
        if not isinstance(error, PromptPaintError):  # an unexpected error: keep the traceback for -v
            log.info("%s: %s failed", job.item.input, name, exc_info=error)
    finally:
        job.timings[name] = round(time.perf_counter() - started, 4)
