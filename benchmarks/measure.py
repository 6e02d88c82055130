"""Timers and memory figures shared by both sides of the benchmark.

Every reading of the clock is preceded by ``torch.cuda.synchronize()`` on CUDA, so a stage is charged
for the GPU work it queued, not only for queueing it.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Stopwatch:
    """Wall seconds, CPU seconds (all threads of the process) and call counts per named stage.

    CPU seconds help read a run on a shared machine: other processes stretch wall time, much less
    the CPU time this process spends."""

    def __init__(self, device: str):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu_seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def sync(self) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.sync()
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.sync()
            self.seconds[name] += time.perf_counter() - started
            self.cpu_seconds[name] += time.process_time() - cpu_started
            self.calls[name] += 1

    def time(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.stage(name):
            return fn(*args, **kwargs)

    def wrap(self, obj: Any, method: str, name: str) -> None:
        """Charge every call of ``obj.method`` to stage ``name`` (an instance attribute shadows the
        class's method, so only this loaded object is affected)."""
        original = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return original(*args, **kwargs)

        setattr(obj, method, timed)

    def reset(self) -> None:
        self.seconds.clear()
        self.cpu_seconds.clear()
        self.calls.clear()

    def get(self, name: str) -> float:
        return round(self.seconds.get(name, 0.0), 3)

    def figures(self, stages: tuple[str, ...] = ("detect", "segment", "inpaint", "total")) -> dict:
        """``{stage}_s`` wall seconds, ``cpu_s`` CPU seconds and ``calls`` per stage."""
        return {**{f"{stage}_s": self.get(stage) for stage in stages},
                "cpu_s": {stage: round(self.cpu_seconds.get(stage, 0.0), 3) for stage in stages},
                "calls": {stage: self.calls.get(stage, 0) for stage in stages if stage != "total"}}


class StepClock:
    """Times denoising steps from a per-step callback: the gaps between consecutive steps of one call.

    Only meaningful on a CPU; on a GPU the callback returns before the step's kernels have run."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._last: float | None = None

    def tick(self, step: int, total: int | None = None) -> None:
        """``step`` counts from 1 within a model call; step 1 starts a new call."""
        now = time.perf_counter()
        if step > 1 and self._last is not None:
            self.gaps.append(now - self._last)
        self._last = now

    def step_s(self) -> float | None:
        """The median step, or None when no call ran two steps."""
        return round(statistics.median(self.gaps), 3) if self.gaps else None


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (ru_maxrss: kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def load_average() -> float | None:
    """The 1-minute load average: above the core count, other processes were competing for the CPU."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def cuda_peak_mb(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def reset_cuda_peak(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
