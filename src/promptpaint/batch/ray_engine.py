"""The Ray engine: Ray Data streams the items through a pool of actors that each load the models once.

    ray.data.from_items(items) -> map_batches(RayItemWorker, ActorPoolStrategy(size=N), num_gpus=1 | num_cpus=C)
                               -> iter_rows() on the driver -> record(row) into OUTDIR/manifest.jsonl

Actors run the same :class:`~promptpaint.batch.worker.ItemWorker` as the local engine and write
outputs themselves (same atomic writer), so OUTDIR must be a folder every node can reach (one
machine, or a shared file system on a cluster). They return manifest rows; the driver appends
them as they arrive. Items and rows travel as JSON strings, which keeps Ray Data's Arrow schema
to one string column whatever the manifest's overrides hold.

Ray is an optional extra (``pip install promptpaint[ray]``): it is imported only here, inside
functions.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from promptpaint.batch.items import BatchItem
from promptpaint.batch.worker import ItemWorker, WorkerConfig
from promptpaint.errors import InvalidOptionError, ModelLoadError, PromptPaintError

log = logging.getLogger(__name__)

#: environment settings forwarded to the actors (on a cluster they do not inherit the driver's)
_FORWARDED_PREFIXES = ("PROMPTPAINT_",)
_FORWARDED = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY")
_FATAL = "fatal_model_error"
#: items per actor call without --batch-size (fewer round trips); the actor edits them
#: ``ItemWorker.batch_size`` at a time
ITEMS_PER_CALL = 4


class RayItemWorker:
    """The actor: builds the Pipeline once in ``__init__`` and edits each batch of items together."""

    def __init__(self, config_json: str):
        self.worker = ItemWorker(WorkerConfig.from_json(config_json))

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import json

        import numpy as np

        items = [BatchItem.from_json(str(text)) for text in batch["item"]]
        try:
            rows = [json.dumps(row) for row in self.worker.process_many(items)]
        except ModelLoadError as error:  # stops the run: sent as a row, since Ray would lose its type
            rows = [json.dumps({_FATAL: str(error)})]
        return {"row": np.array(rows, dtype=object)}


def run_ray(items: list[BatchItem], config: WorkerConfig, record: Callable[[dict[str, Any]], bool], *,
            address: str | None = None, workers: int | None = None, batch_size: int | None = None) -> None:
    """Process ``items`` on a local Ray started for the run, or on the cluster at ``address``.

    ``record(row)`` returns False to stop (--fail-fast): the driver stops reading results and
    the rest of the dataset is not started; items in flight may still be written (they have no
    row, so --resume does them again)."""
    import json

    ray = _import_ray()
    started_here = _connect(ray, address)
    try:
        gpu = _wants_gpu(config, ray.cluster_resources())
        workers = workers or _default_workers(ray, gpu)
        batch_size = batch_size or ITEMS_PER_CALL
        resources = {"num_gpus": 1} if gpu else {"num_cpus": _cpus_per_actor(ray, workers)}
        log.info("ray: %d actor(s), %s each, batches of %d", workers, resources, batch_size)
        _quiet_ray_data(ray)
        dataset = ray.data.from_items([{"item": item.to_json()} for item in items],
                                      override_num_blocks=max(1, -(-len(items) // batch_size)))
        results = dataset.map_batches(
            RayItemWorker, fn_constructor_kwargs={"config_json": config.to_json()}, batch_size=batch_size,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers),
            runtime_env=_runtime_env(), **resources)
        rows = iter(results.iter_rows())
        try:
            for row in rows:
                result = json.loads(row["row"])
                if _FATAL in result:
                    raise ModelLoadError(result[_FATAL])
                if not record(result):
                    break
        finally:
            getattr(rows, "close", lambda: None)()  # stop the streaming executor now, not at garbage collection
    finally:
        if started_here:
            ray.shutdown()


def _import_ray():
    try:
        import ray
        import ray.data  # the [data] extra (pyarrow...) may be missing
    except ImportError as error:
        raise PromptPaintError(f"the Ray engine needs Ray Data ({error}): pip install 'promptpaint[ray]'") from None
    return ray


def _connect(ray, address: str | None) -> bool:
    """Join ``address``, or start a private local Ray for this run; True when we started it."""
    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING)
        except Exception as error:  # noqa: BLE001 - ConnectionError and Ray's own types
            raise PromptPaintError(f"cannot connect to the Ray cluster at {address}: {error}") from None
        return True
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private single-machine Ray needs no token
    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, logging_level=logging.WARNING)
    return True


def _quiet_ray_data(ray) -> None:
    """The batch draws its own bar; Ray Data's bars and INFO lines show only with -v."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    verbose = logging.getLogger().getEffectiveLevel() <= logging.INFO
    logging.getLogger("ray.data").setLevel(logging.INFO if verbose else logging.ERROR)


def _wants_gpu(config: WorkerConfig, cluster: dict[str, float]) -> bool:
    """cuda asks for GPUs; auto uses them when the cluster has any; cpu/mps never do."""
    from promptpaint.options import ModelOptions, parse_options

    device = parse_options(ModelOptions, config.models).device
    if device == "cuda" and not cluster.get("GPU"):
        raise InvalidOptionError("--device cuda, but the Ray cluster has no GPU")
    return device == "cuda" or (device == "auto" and bool(cluster.get("GPU")))


def _default_workers(ray, gpu: bool) -> int:
    """One actor per GPU; on CPUs one actor (torch already uses every core of its node)."""
    if gpu:
        return max(1, int(ray.cluster_resources().get("GPU", 0)))
    return 1


def _cpus_per_actor(ray, workers: int) -> int:
    """The cluster's CPUs shared among the actors, but no more than the largest node has."""
    total = int(ray.cluster_resources().get("CPU", 1))
    largest = max((int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")), default=1)
    return max(1, min(total // max(1, workers), largest))


def _runtime_env() -> dict[str, Any] | None:
    env = {k: v for k, v in os.environ.items() if k.startswith(_FORWARDED_PREFIXES) or k in _FORWARDED}
    return {"env_vars": env} if env else None
