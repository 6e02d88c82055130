"""Model calls as requests, run one at a time or gathered across images into batched calls.

An edit is written once, as a generator (an operation's ``steps``): it yields the model calls it
needs and receives their results. :func:`run_alone` answers each request on its own, which is
what ``Pipeline.edit`` and ``Pipeline.run`` do (one variant per call, so each replays exactly from
its seed). :func:`run_together` advances the edits of many images in lockstep and answers the
requests they yield at the same moment together: one segmenter encoding and one detector pass for
several images, one diffusion call for several same-size crops. Batched results equal the ones
made alone up to float rounding (a batched matrix product may sum in another order).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from promptpaint.core.types import Progress
from promptpaint.errors import ModelLoadError

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class SelectHint:
    """An edit is about to select on ``image`` with these models: a batch runner may encode the
    image and run the detector for several images at once beforehand (the backends cache the
    results, and the selection then finds them). Alone, it is answered with nothing."""

    image: np.ndarray
    segmenter: Any
    detector: Any | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class InpaintCall:
    """One generation: a crop and its mask at the model's size, one seed. Answered with the crop
    repainted."""

    model: Any
    image: np.ndarray
    mask: np.ndarray
    prompt: str
    negative_prompt: str
    seed: int
    steps: int | None
    guidance: float | None
    strength: float | None
    progress: Progress | None = None
    previews: int = 0  # a preview picture with the progress every this many steps (0: none)
    feature_cache: int = 0  # DeepCache's interval (0: every step runs the whole denoiser)

    def batch_key(self) -> tuple:
        """Calls with equal keys can share one model call (prompts, masks and seeds may differ)."""
        return (id(self.model), self.image.shape, self.steps, self.guidance, self.strength, self.feature_cache)

    def asked(self) -> dict:
        """The optional settings of this call, given only when set: models without them are never asked."""
        return {k: v for k, v in (("previews", self.previews), ("feature_cache", self.feature_cache)) if v}

    def run_alone(self) -> np.ndarray:
        asked = self.asked()
        return self.model.inpaint([self.image], self.mask, prompt=self.prompt, negative_prompt=self.negative_prompt,
                                  seeds=[self.seed], steps=self.steps, guidance=self.guidance,
                                  strength=self.strength, progress=self.progress, **asked)[0]


Request = SelectHint | InpaintCall
#: yields the requests it needs now, receives one answer per request, returns its result
Steps = Generator[list[Request], list[Any], Any]


Q = TypeVar("Q")
A = TypeVar("A")
R = TypeVar("R")


def drive(steps: Generator[Q, A, R], answer: Callable[[Q], A]) -> R:
    """The one driver loop: send each request's answer back until the generator returns."""
    try:
        request = next(steps)
        while True:
            request = steps.send(answer(request))
    except StopIteration as done:
        return done.value


def run_alone(steps: Steps) -> Any:
    """Drive one edit, answering each request on its own; its errors propagate."""
    return drive(steps, lambda requests: [None if isinstance(r, SelectHint) else r.run_alone() for r in requests])


def run_together(all_steps: Sequence[Steps]) -> list[Any]:
    """Drive several edits in lockstep, answering the requests they make at the same moment
    together (so the caller chooses the batch size by how many edits it gives).

    Returns each one's result, or the exception that ended it (one image's bad input or empty
    selection does not stop the others). A model that cannot load stops everything."""
    outcomes: list[Any] = [None] * len(all_steps)
    waiting: dict[int, list[Request]] = {}

    def advance(i: int, answers: list[Any] | None = None, error: Exception | None = None) -> None:
        steps = all_steps[i]
        try:
            if error is not None:
                waiting[i] = steps.throw(error)
            else:
                waiting[i] = steps.send(answers) if answers is not None else next(steps)
        except StopIteration as done:
            outcomes[i] = done.value
        except ModelLoadError:
            raise
        except Exception as failure:  # noqa: BLE001 - this image's failure, kept for its report
            outcomes[i] = failure

    for i in range(len(all_steps)):
        advance(i)
    while waiting:
        current, waiting = waiting, {}
        answers = {i: [None] * len(requests) for i, requests in current.items()}
        errors: dict[int, Exception] = {}
        flat = [(i, j, r) for i, requests in current.items() for j, r in enumerate(requests)]
        _prefetch([r for _, _, r in flat if isinstance(r, SelectHint)])
        for group in _groups([(i, j, r) for i, j, r in flat if isinstance(r, InpaintCall)]):
            for (i, j, _), result in zip(group, _inpaint_group([r for _, _, r in group])):
                if isinstance(result, Exception):
                    errors.setdefault(i, result)
                else:
                    answers[i][j] = result
        for i in current:
            advance(i, answers[i], errors.get(i))
    return outcomes


def _groups(calls: list[tuple[int, int, InpaintCall]]) -> list[list[tuple[int, int, InpaintCall]]]:
    by_key: dict[tuple, list] = {}
    for call in calls:
        by_key.setdefault(call[2].batch_key(), []).append(call)
    return list(by_key.values())


def _inpaint_group(calls: list[InpaintCall]) -> list[np.ndarray | Exception]:
    """One model call for the group where the model batches; if it fails, each call alone, so that
    only the call at fault fails."""
    model = calls[0].model
    if len(calls) > 1 and model.batches:
        first = calls[0]
        try:
            return model.inpaint([c.image for c in calls], [c.mask for c in calls],
                                 prompt=[c.prompt for c in calls], negative_prompt=[c.negative_prompt for c in calls],
                                 seeds=[c.seed for c in calls], steps=first.steps, guidance=first.guidance,
                                 strength=first.strength,
                                 **({"feature_cache": first.feature_cache} if first.feature_cache else {}))
        except ModelLoadError:
            raise
        except Exception as error:  # noqa: BLE001
            log.info("a batched call of %d failed (%s); running them one by one", len(calls), error)
    results: list[np.ndarray | Exception] = []
    for call in calls:
        try:
            results.append(call.run_alone())
        except ModelLoadError:
            raise
        except Exception as error:  # noqa: BLE001
            results.append(error)
    return results


def _prefetch(hints: list[SelectHint]) -> None:
    """Batched segmenter encodings and detector passes, into the backends' caches. Best effort: a
    failure here only means each selection computes its own (and reports its own error)."""
    by_segmenter: dict[int, list[SelectHint]] = {}
    by_detector: dict[tuple, list[SelectHint]] = {}
    for hint in hints:
        if hint.segmenter.batches:
            by_segmenter.setdefault(id(hint.segmenter), []).append(hint)
        if hint.labels and hint.detector.batches:
            by_detector.setdefault((id(hint.detector), hint.labels), []).append(hint)
    try:
        for same in by_detector.values():
            same[0].detector.detect_many([h.image for h in same], list(same[0].labels))
        for same in by_segmenter.values():
            same[0].segmenter.encode_many([h.image for h in same])
    except ModelLoadError:
        raise
    except Exception as error:  # noqa: BLE001
        log.info("batched selection failed (%s); selecting one image at a time", error)
