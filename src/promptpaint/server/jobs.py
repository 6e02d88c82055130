"""One worker thread runs the model work, one job at a time; other jobs wait in a bounded queue.

The models sit on one device and are not safe to call from two threads at once, so every
request that touches them becomes a :class:`QueuedJob`. A request arriving when ``capacity`` jobs
already wait gets :class:`QueueFullError` (HTTP 503 with Retry-After) instead of piling up.
A failing job stores its error and the worker moves on: it never takes the server down.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from promptpaint.core.types import Progress
from promptpaint.errors import PromptPaintError
from promptpaint.server.errors import (InternalError, JobCancelledError, JobStateError, NotFoundError,
                                      OutOfMemoryError, QueueFullError)

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

Work = Callable[[Progress], Any]

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
DEFAULT_JOB_SECONDS = 5.0  # Retry-After guess before any job has finished
STEP_WINDOW = 8  # the latest steps whose pace gives the ETA


@dataclass(eq=False)
class QueuedJob:
    """A unit of model work in the server's queue, and what the API reports about it."""

    kind: str
    work: Work
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    status: str = QUEUED
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    step: int = 0  # denoising step i of `steps` in the current pass
    steps: int = 0
    passes: int = 0  # model passes so far (one per crop window and batch)
    result: Any = None
    present: Callable[[Any], Any] | None = None  # result -> JSON for GET /v1/jobs/{id}
    payload: Any = None  # what `present` made, on the first fetch after the job finished
    error: PromptPaintError | None = None
    future: Future = field(default_factory=Future, repr=False)
    cancel_requested: bool = False
    preview: np.ndarray | None = field(default=None, repr=False)  # the latest live preview (RGB)
    preview_step: int = 0
    previews: int = 0  # live previews received so far (the preview's version)
    _last_step_at: float | None = field(default=None, repr=False)
    _step_seconds: deque = field(default_factory=lambda: deque(maxlen=STEP_WINDOW), repr=False)

    def report(self, step: int, steps: int, preview: np.ndarray | None = None) -> None:
        """The pipeline's progress callback (with ``preview=`` when live previews were asked for);
        also where a cancelled running job stops."""
        if self.cancel_requested:
            raise JobCancelledError(f"job {self.id} was cancelled")
        now = time.perf_counter()
        if step <= 1:
            self.passes += 1
        elif self._last_step_at is not None:
            self._step_seconds.append(now - self._last_step_at)
        self._last_step_at = now
        self.step, self.steps = step, steps
        if preview is not None:
            self.preview, self.preview_step, self.previews = preview, step, self.previews + 1

    def eta_s(self) -> float | None:
        """Seconds left in this model pass, from the pace of its latest steps (None until known)."""
        if not self._step_seconds or not self.steps:
            return None
        return round(max(0, self.steps - self.step) * statistics.median(self._step_seconds), 1)

    async def wait(self) -> Any:
        """The result, or the job's typed error raised here (in the request's task)."""
        return await asyncio.wrap_future(self.future)

    def take_result(self) -> Any:
        """Hand the result to a synchronous request and drop it here (large arrays)."""
        result, self.result = self.result, None
        return result

    @property
    def ended(self) -> bool:
        return self.status in FINISHED

    def ended_seen(self) -> None:
        """A client has read that the job ended: its result (or error) says the rest, so the last
        live preview goes."""
        if self.ended:
            self.preview = None

    def to_json(self, position: int | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "kind": self.kind, "status": self.status,
            "progress": {"step": self.step, "steps": self.steps, "pass": self.passes, "eta_s": self.eta_s()},
            "created": self.created, "started": self.started, "finished": self.finished,
        }
        if position is not None:
            data["position"] = position
        if self.preview is not None and not self.ended:
            height, width = self.preview.shape[:2]
            data["preview"] = {"version": self.previews, "step": self.preview_step, "width": width, "height": height,
                               "url": f"/v1/jobs/{self.id}/preview"}
        if self.cancel_requested and self.status == RUNNING:
            data["cancel_requested"] = True
        if self.error is not None:
            data["error"] = {"status": self.error.http_status, "error": type(self.error).__name__,
                             "detail": str(self.error)}
        return data


class JobQueue:
    """A single worker thread and a bounded FIFO of waiting jobs."""

    def __init__(self, capacity: int, keep_finished: int = 32, name: str = "promptpaint-worker"):
        self.capacity = capacity
        self.keep_finished = keep_finished
        self._waiting: deque[QueuedJob] = deque()
        self._running: QueuedJob | None = None
        self._jobs: OrderedDict[str, QueuedJob] = OrderedDict()
        self._durations: deque[float] = deque(maxlen=20)
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ submitting
    def check_capacity(self) -> None:
        """Fail fast (before decoding uploads) when a submit would be refused."""
        with self._cond:
            self._refuse_if_full()

    def submit(self, work: Work, kind: str, present: Callable[[Any], Any] | None = None) -> QueuedJob:
        job = QueuedJob(kind=kind, work=work, present=present)
        with self._cond:
            if self._closed:
                raise QueueFullError("the server is shutting down", retry_after=30)
            self._refuse_if_full()
            self._waiting.append(job)
            self._jobs[job.id] = job
            self._cond.notify()
        return job

    def _refuse_if_full(self) -> None:
        # Jobs in the system: the running one plus those waiting (one may wait for an idle worker).
        in_system = len(self._waiting) + (self._running is not None)
        if in_system >= self.capacity + 1:
            raise QueueFullError(f"busy: {len(self._waiting)} job(s) already waiting (queue size "
                                 f"{self.capacity}); retry later", retry_after=self._retry_after())

    def _retry_after(self) -> int:
        average = sum(self._durations) / len(self._durations) if self._durations else DEFAULT_JOB_SECONDS
        return max(1, math.ceil(average * (len(self._waiting) + 1)))

    # ------------------------------------------------------------------ looking up
    def get(self, job_id: str) -> QueuedJob:
        with self._cond:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r} (unknown, or finished long ago and forgotten)")
        return job

    def position(self, job: QueuedJob) -> int:
        """1 for the next job to run, 0 when running or finished."""
        with self._cond:
            return self._waiting.index(job) + 1 if job in self._waiting else 0

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"running": int(self._running is not None), "waiting": len(self._waiting),
                    "capacity": self.capacity}

    @property
    def alive(self) -> bool:
        """False if the worker thread has stopped (closed, or a bug): health then reports 503."""
        return self._thread.is_alive()

    def cancel(self, job_id: str) -> QueuedJob:
        """Drop a waiting job at once; ask a running one to stop at its next step."""
        job = self.get(job_id)
        with self._cond:
            if job.status in FINISHED:
                raise JobStateError(f"job {job_id} already {job.status}; nothing to cancel")
            if job in self._waiting:
                self._waiting.remove(job)
                self._finish(job, CANCELLED, error=JobCancelledError(f"job {job_id} was cancelled"))
            else:
                job.cancel_requested = True
        return job

    # ------------------------------------------------------------------ the worker
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                if not job.future.set_running_or_notify_cancel():
                    # Its request went away (the awaiting task was cancelled) before it started.
                    job.status, job.finished = CANCELLED, time.time()
                    job.error = JobCancelledError(f"job {job.id} was dropped: its request went away")
                    continue
                self._running = job
                job.status, job.started = RUNNING, time.time()
            self._run(job)

    def _run(self, job: QueuedJob) -> None:
        try:
            result = job.work(job.report)
        except JobCancelledError as error:
            self._finish(job, CANCELLED, error=error)
        except PromptPaintError as error:
            self._finish(job, FAILED, error=error)
        except Exception as error:  # noqa: BLE001 - a job's bug must not stop the worker
            log.exception("job %s (%s) failed", job.id, job.kind)
            self._finish(job, FAILED, error=_internal(error))
        else:
            self._finish(job, DONE, result=result)

    def _finish(self, job: QueuedJob, status: str, *, result: Any = None, error: PromptPaintError | None = None) -> None:
        with self._cond:
            # The last preview stays until a client reads that the job ended (see ``ended_seen``):
            # a preview request the page sent just before the end still gets its picture.
            job.status, job.finished, job.result, job.error = status, time.time(), result, error
            if job is self._running:
                self._running = None
                self._durations.append(job.finished - (job.started or job.finished))
            self._forget_old()
        try:
            if error is None:
                job.future.set_result(result)
            else:
                job.future.set_exception(error)
        except InvalidStateError:  # cancelled by its request meanwhile: nobody waits for it
            pass

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status in FINISHED]
        for old in finished[:max(0, len(finished) - self.keep_finished)]:
            del self._jobs[old.id]

    def close(self, timeout: float = 5.0) -> None:
        """Cancel waiting jobs and stop the worker after its current job."""
        with self._cond:
            self._closed = True
            waiting, self._waiting = list(self._waiting), deque()
            self._cond.notify_all()
        for job in waiting:
            self._finish(job, CANCELLED, error=JobCancelledError("the server is shutting down"))
        self._thread.join(timeout)


def _internal(error: Exception) -> PromptPaintError:
    """One line for an unexpected failure; out-of-memory gets its own advice and frees the cache."""
    name = type(error).__name__
    if "OutOfMemory" in name or isinstance(error, MemoryError):
        _free_accelerator_memory()
        return OutOfMemoryError(f"out of memory ({name}); try a smaller image or working size")
    text = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
    return InternalError(f"internal error: {name}{': ' + text if text else ''}")


def _free_accelerator_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass
