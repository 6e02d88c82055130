"""Batched model calls across images: the lockstep driver with fake models (exact expectations),
then ``Pipeline.run_many`` with the tiny models against one-at-a-time runs."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.errors import ImageLoadError, InvalidOptionError, ModelLoadError, NothingFoundError
from promptpaint.pipeline.batching import InpaintCall, SelectHint, run_alone, run_together

# Same-size runs of the tiny models gave bit-identical results batched and alone on this machine;
# a batched matrix product may round differently elsewhere, so allow a level or two.
ROUNDING = 2


# ----------------------------------------------------------------------------- the driver, fake models
class FakeInpainter:
    """Paints each crop with its seed as the colour and records every call it gets."""

    def __init__(self, batches: bool = True, refuse: str | None = None):
        self.batches = batches
        self.refuse = refuse  # a prompt this model fails on
        self.calls: list[int] = []  # images per call

    def inpaint(self, images, mask, *, prompt, negative_prompt, seeds, steps, guidance, strength, progress=None):
        prompts = prompt if isinstance(prompt, list) else [prompt] * len(images)
        if self.refuse in prompts:
            raise ValueError(f"cannot paint {self.refuse!r}")
        self.calls.append(len(images))
        return [np.full_like(im, s % 256) for im, s in zip(images, seeds)]


def edit_steps(model, size: int, seed: int, prompt: str = "p", windows: int = 1):
    """A stand-in for one image's edit: ``windows`` model calls in a row, each one crop."""
    painted = []
    for w in range(windows):
        (out,) = yield [InpaintCall(model, np.zeros((size, size, 3), np.uint8), np.ones((size, size), bool),
                                    prompt, "", seed + w, 2, None, 1.0)]
        painted.append(int(out[0, 0, 0]))
    return painted


def test_same_size_calls_of_several_images_share_one_model_call():
    model = FakeInpainter()
    outcomes = run_together([edit_steps(model, 64, seed) for seed in (1, 2, 3)] + [edit_steps(model, 32, 9)])
    assert outcomes == [[1], [2], [3], [9]]
    assert sorted(model.calls) == [1, 3]  # the 64-px crops together, the 32-px one alone


def test_each_image_keeps_its_own_answers_over_several_rounds():
    model = FakeInpainter()
    outcomes = run_together([edit_steps(model, 64, 10, windows=3), edit_steps(model, 64, 20, windows=1)])
    assert outcomes == [[10, 11, 12], [20]]
    assert model.calls == [2, 1, 1]


def test_alone_answers_every_call_on_its_own():
    model = FakeInpainter()
    assert run_alone(edit_steps(model, 64, 5, windows=2)) == [5, 6]
    assert model.calls == [1, 1]


def test_a_model_that_does_not_batch_is_called_once_per_crop():
    model = FakeInpainter(batches=False)
    assert run_together([edit_steps(model, 64, s) for s in (1, 2)]) == [[1], [2]]
    assert model.calls == [1, 1]


def test_a_failed_batch_is_retried_alone_so_only_the_guilty_image_fails():
    model = FakeInpainter(refuse="bad")
    outcomes = run_together([edit_steps(model, 64, 1), edit_steps(model, 64, 2, prompt="bad"), edit_steps(model, 64, 3)])
    assert outcomes[0] == [1] and outcomes[2] == [3]
    assert isinstance(outcomes[1], ValueError) and "bad" in str(outcomes[1])


def test_an_image_that_fails_does_not_stop_the_others():
    def broken():
        yield [SelectHint(np.zeros((4, 4, 3), np.uint8), segmenter=FakeSegmenter())]
        raise NothingFoundError(["cat"])

    model = FakeInpainter()
    outcomes = run_together([edit_steps(model, 64, 1), broken(), edit_steps(model, 64, 2)])
    assert outcomes[0] == [1] and outcomes[2] == [2]
    assert isinstance(outcomes[1], NothingFoundError)


def test_a_model_that_cannot_load_stops_everything():
    def unloadable():
        yield []
        raise ModelLoadError("no such model")

    with pytest.raises(ModelLoadError):
        run_together([edit_steps(FakeInpainter(), 64, 1), unloadable()])


class FakeSegmenter:
    batches = True

    def __init__(self):
        self.calls: list[int] = []  # images per batched call

    def encode_many(self, images):
        self.calls.append(len(images))


class FakeDetector:
    batches = True

    def __init__(self):
        self.calls: list[tuple[int, tuple]] = []  # (images, labels) per batched call

    def detect_many(self, images, labels):
        self.calls.append((len(images), tuple(labels)))


def test_selection_hints_become_one_encoding_and_one_detector_pass_per_label_set():
    segmenter, detector = FakeSegmenter(), FakeDetector()

    def select(labels):
        answers = yield [SelectHint(np.zeros((8, 8, 3), np.uint8), segmenter, detector if labels else None, labels)]
        return answers

    outcomes = run_together([select(("cat",)), select(("cat",)), select(("dog", "cat")), select(())])
    assert outcomes == [[None]] * 4
    assert segmenter.calls == [4]
    assert sorted(detector.calls) == [(1, ("dog", "cat")), (2, ("cat",))]


# ------------------------------------------------------------------------- tiny models, real backends
def photos(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), np.uint8) for w, h in sizes]


def spy(obj, name, log):
    """Record the number of images of each call to ``obj.name`` (a backend's batched forward)."""
    original = getattr(obj, name)

    def wrapper(images, *args, **kwargs):
        log.append(len(images))
        return original(images, *args, **kwargs)

    setattr(obj, name, wrapper)
    return lambda: setattr(obj, name, original)


def assert_same_edit(alone, together):
    assert together.mask.shape == alone.mask.shape and (together.mask == alone.mask).all()
    outside = ~alone.mask
    assert (together.image[outside] == alone.image[outside]).all()
    diff = np.abs(together.image.astype(int) - alone.image.astype(int))
    assert diff.max() <= ROUNDING
    assert together.recipe == alone.recipe


def test_run_many_batches_every_model_and_matches_run(tiny_pipeline):
    pipe = tiny_pipeline
    images = photos([(160, 120)] * 3 + [(144, 112)], seed=1)
    recipes = [{"box_threshold": 0, "text_threshold": 0, "edits": [
        # no refinement: with the tiny model's 64 px each random selection would need its own
        # number of refine tiles, and the images would fall out of step
        {"op": "replace", "find": ["cat", "dog"], "box": "10,10,70,60", "prompt": f"a red ball {i}", "seed": i,
         "steps": 2, "no_refine": True},
        # dilate 0: the tiny SAM's random mask grown by the default 8 px covers the whole photo,
        # which a removal refuses (nothing left to fill from)
        {"op": "remove", "box": "20,20,50,50", "remover": "telea", "seed": 7, "dilate": 0},
    ]} for i in range(len(images))]
    detector, segmenter, inpainter = pipe.detector(), pipe.segmenter(), pipe.inpainter()
    forwards, encodes, paints = [], [], []
    undo = [spy(detector, "_forward", forwards), spy(segmenter, "_encode", encodes),
            spy(inpainter, "inpaint", paints)]
    try:
        together = pipe.run_many(list(zip(images, recipes)), batch_size=4)
        batched = (list(forwards), list(encodes), list(paints))
        paints.clear()
        alone = [pipe.run(im, r) for im, r in zip(images, recipes)]  # detector and encoder: cached now
    finally:
        for restore in undo:
            restore()
    # One detector pass per image size and one image-encoder pass per edit for all four images;
    # the diffusion model is called once per round of same-size crops instead of once per crop.
    assert sorted(batched[0]) == [1, 3]
    assert batched[1][0] == 4 and len(batched[1]) <= 2
    assert sum(batched[2]) == sum(paints) >= 4 and paints == [1] * len(paints)
    assert len(batched[2]) < len(paints)
    for a, t in zip(alone, together):
        assert_same_edit(a, t)


def test_run_many_reports_bad_images_and_finishes_the_rest(tiny_pipeline):
    good = photos([(160, 120)] * 2, seed=2)
    replace = {"edits": [{"op": "replace", "box": "10,10,60,60", "prompt": "a ball", "seed": 1, "steps": 2,
                          "no_refine": True}]}  # one window: no refine tiles building on batched rounding
    nothing = {"box_threshold": 1.0, "edits": [{"op": "replace", "find": "cat", "prompt": "a ball", "seed": 1}]}
    outcomes = tiny_pipeline.run_many([(good[0], replace), (b"not an image", replace), (good[1], nothing),
                                       (good[1], replace)])
    assert isinstance(outcomes[1], ImageLoadError)
    assert isinstance(outcomes[2], NothingFoundError)
    assert_same_edit(tiny_pipeline.run(good[0], replace), outcomes[0])
    assert_same_edit(tiny_pipeline.run(good[1], replace), outcomes[3])


def test_run_many_goes_batch_size_images_at_a_time(tiny_pipeline, monkeypatch):
    import promptpaint.pipeline.pipeline as pipeline_module

    sizes = []
    monkeypatch.setattr(pipeline_module, "run_together",
                        lambda steps: sizes.append(len(steps)) or [s.close() for s in steps])
    tiny_pipeline.run_many([(None, {})] * 7, batch_size=3)
    assert sizes == [3, 3, 1]
    with pytest.raises(InvalidOptionError):
        tiny_pipeline.run_many([], batch_size=0)
