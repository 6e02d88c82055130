"""Every backend declares the capabilities its protocol names (``backends/protocols.py``), with the
right values: the pipeline decides by these attributes, never by ``hasattr`` or family names."""

from __future__ import annotations

import typing

import pytest

from promptpaint.backends.protocols import Detector, Inpainter, Matter, Segmenter
from promptpaint.pipeline.pipeline import Pipeline


def declared(protocol) -> dict[str, object]:
    """The attributes (not methods) a protocol declares, with their annotations."""
    return {name: hint for name, hint in typing.get_type_hints(protocol).items()}


def check(backend, protocol) -> None:
    for name, hint in declared(protocol).items():
        assert hasattr(backend, name), f"{type(backend).__name__} does not declare {name}"
        value = getattr(backend, name)
        allowed = typing.get_args(hint) or (hint,)
        assert isinstance(value, tuple(t for t in allowed if isinstance(t, type))), (name, value)


@pytest.fixture(scope="module")
def pipe(tiny):
    return Pipeline(device="cpu")


@pytest.mark.parametrize("family, returns_masks, text_threshold", [
    ("grounding-dino", False, 0.3), ("owlv2", False, None), ("sam3", True, None)])
def test_detectors_declare_their_capabilities(tiny, pipe, family, returns_masks, text_threshold):
    detector = pipe.detector(str(tiny[family]))
    check(detector, Detector)
    assert detector.returns_masks is returns_masks and detector.batches is (family != "sam3")
    assert detector.default_text_threshold == text_threshold and 0 < detector.default_box_threshold < 1


@pytest.mark.parametrize("family, from_text", [("sam", False), ("sam2", False), ("sam3", True)])
def test_segmenters_declare_their_capabilities(tiny, pipe, family, from_text):
    segmenter = pipe.segmenter(str(tiny[family]))
    check(segmenter, Segmenter)
    assert segmenter.finds_from_text is from_text
    assert segmenter.takes_boxes is segmenter.takes_points is segmenter.batches is (not from_text)


@pytest.mark.parametrize("family, negative, steps, strength", [
    ("sd-inpaint", True, 25, 1.0), ("sdxl-inpaint", True, 20, 0.99), ("flux-fill", False, 28, 1.0)])
def test_inpainters_declare_their_capabilities(tiny, pipe, family, negative, steps, strength):
    inpainter = pipe.inpainter(str(tiny[family]))
    check(inpainter, Inpainter)
    assert inpainter.needs_prompt and inpainter.upscale and inpainter.batches
    assert inpainter.takes_negative_prompt is negative
    assert (inpainter.default_steps, inpainter.default_strength) == (steps, strength)


@pytest.mark.parametrize("name", ["lama", "telea"])
def test_removers_declare_that_they_take_no_prompt_steps_or_guidance(tiny, pipe, name):
    remover = pipe.remover(str(tiny["lama"]) if name == "lama" else "telea")
    check(remover, Inpainter)
    assert not (remover.needs_prompt or remover.takes_negative_prompt or remover.upscale or remover.batches)
    assert remover.default_steps is remover.default_guidance is remover.default_strength is None


def test_an_inpainter_can_be_the_remover(tiny, pipe):
    assert pipe.remover(str(tiny["sd-inpaint"])) is pipe.inpainter(str(tiny["sd-inpaint"]))


def test_the_matting_model_declares_its_windows(tiny, pipe):
    matter = pipe.matting(str(tiny["vitmatte"]))
    check(matter, Matter)
    assert matter.family == "vitmatte" and matter.multiple == 32 and 0 < matter.overlap < matter.window


def test_matting_none_is_no_model(pipe):
    assert pipe.matting("none") is None and pipe.model("matting", "none") is None
