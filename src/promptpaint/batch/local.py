"""The local engine: one process, one Pipeline (models loaded once), three stages overlapped.

    reader thread  --(queue)-->  main thread: model                 --(queue)-->  writer thread
    decode + recipe              Pipeline.run_many on up to                      encode, write, record
                                 batch_size decoded images (run if 1)

Torch, Pillow's decoders and zlib release the GIL, so decoding the next image and encoding the
last one run while the model works on the current ones. The model takes what the reader has
ready, up to ``batch_size`` images, and never waits for a batch to fill. The writer is the only
thread that records rows, right after the item's files are written.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from promptpaint.batch.items import BatchItem
from promptpaint.batch.worker import ItemTask, ItemWorker, WorkerConfig

#: items decoded ahead of the model (beyond one batch), and edited images waiting for the writer
PREFETCH = 2
_END = object()
_POLL_S = 0.1


def run_local(items: list[BatchItem], config: WorkerConfig, record: Callable[[dict[str, Any]], bool]) -> None:
    """Process ``items`` in order; ``record(row)`` returns False to stop (--fail-fast).

    Stopping starts nothing new, but what was already edited is still written and recorded."""
    worker = ItemWorker(config)
    batch_size = worker.batch_size
    stop = threading.Event()
    to_edit: queue.Queue = queue.Queue(batch_size + PREFETCH)
    to_write: queue.Queue = queue.Queue(batch_size + PREFETCH)
    reader = _Reader(worker, items, to_edit, stop)
    writer = _Writer(worker, to_write, record, stop)
    reader.start()
    writer.start()
    try:
        while tasks := _take(to_edit, stop, batch_size):
            for task in worker.edit_many(tasks):
                _put(to_write, task, writer)
    except BaseException:
        stop.set()  # e.g. Ctrl-C: the writer still finishes what is queued
        raise
    finally:
        _drain(to_edit)
        _put(to_write, _END, writer)
        writer.join()
        reader.join()
    reader.raise_failure()
    writer.raise_failure()


class _Stage(threading.Thread):
    """A daemon thread that keeps an unexpected error (a bug, a full disk) to re-raise in the caller."""

    def __init__(self, name: str, stop: threading.Event):
        super().__init__(name=name, daemon=True)
        self.stop = stop
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            self.failure = error
            self.stop.set()

    def work(self) -> None:
        raise NotImplementedError

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure


class _Reader(_Stage):
    """Decodes ahead of the model; ends the queue with _END whatever happens."""

    def __init__(self, worker: ItemWorker, items: list[BatchItem], target: queue.Queue, stop: threading.Event):
        super().__init__("batch-reader", stop)
        self.worker, self.items, self.target = worker, items, target

    def work(self) -> None:
        try:
            for item in self.items:
                if self.stop.is_set():
                    break
                task = self.worker.read(item)
                while not self.stop.is_set():
                    try:
                        self.target.put(task, timeout=_POLL_S)
                        break
                    except queue.Full:
                        continue
        finally:
            # The main thread drains the queue once stopping, so this cannot block for long.
            self.target.put(_END)


class _Writer(_Stage):
    """Writes each edited task's files, then records its row."""

    def __init__(self, worker: ItemWorker, source: queue.Queue, record: Callable[[dict], bool],
                 stop: threading.Event):
        super().__init__("batch-writer", stop)
        self.worker, self.source, self.record = worker, source, record

    def work(self) -> None:
        while (task := self.source.get()) is not _END:
            if not self.record(self.worker.write(task)):
                self.stop.set()


def _get(source: queue.Queue, stop: threading.Event) -> ItemTask | object:
    """The next task for the model, or _END once the reader is done or the run is stopping."""
    while not stop.is_set():
        try:
            return source.get(timeout=_POLL_S)
        except queue.Empty:
            continue
    return _END


def _take(source: queue.Queue, stop: threading.Event, batch_size: int) -> list[ItemTask]:
    """The next tasks for the model: wait for one, then add what is ready, up to ``batch_size``.
    Empty once the reader is done (its _END is put back for the next call) or the run stops."""
    first = _get(source, stop)
    if first is _END:
        return []
    tasks = [first]
    while len(tasks) < batch_size:
        try:
            task = source.get_nowait()
        except queue.Empty:
            break
        if task is _END:
            source.put(_END)  # the queue has room: we just took from it
            break
        tasks.append(task)
    return tasks


def _drain(source: queue.Queue) -> None:
    """Unblock a reader waiting on a full queue (its tasks are dropped: nothing was done for them)."""
    while True:
        try:
            source.get_nowait()
        except queue.Empty:
            return


def _put(target: queue.Queue, task: Any, writer: threading.Thread) -> None:
    """Put unless the writer is gone (it died on an error: nobody would take the task)."""
    while writer.is_alive():
        try:
            target.put(task, timeout=_POLL_S)
            return
        except queue.Full:
            continue
