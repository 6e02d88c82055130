"""Shared fixtures: the tiny-model kit (built once per machine into .cache/) and sample photos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the network
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# The tiny models are all overhead: one thread per process is several times faster than torch's
# default on this 2-core machine, more so when CLI subprocesses run beside the test process.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
TINY_DIR = Path(os.environ.get("PROMPTPAINT_TINY_MODELS", ROOT / ".cache" / "tiny-models"))


@pytest.fixture(scope="session")
def tiny() -> dict[str, Path]:
    """name -> folder of every tiny model (grounding-dino, owlv2, sam, sam2, sam3, sd-inpaint, ...)."""
    from promptpaint.testing.tiny_models import build_all

    return {name: Path(folder) for name, folder in build_all(TINY_DIR).items()}


@pytest.fixture(scope="session")
def cat_rgb() -> np.ndarray:
    """A real photo (300x451 cat, from scikit-image's wheel: no download)."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.chelsea())


@pytest.fixture()
def cat_png(tmp_path, cat_rgb) -> Path:
    from PIL import Image

    path = tmp_path / "cat.png"
    Image.fromarray(cat_rgb).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_pipeline(tiny):
    """A Pipeline wired to the tiny models (Grounding DINO, SAM, SD inpainting, LaMa)."""
    from promptpaint.pipeline.pipeline import Pipeline

    return Pipeline(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]),
                    inpainter=str(tiny["sd-inpaint"]), remover=str(tiny["lama"]), device="cpu")


@pytest.fixture()
def blackout_operation():
    """A test-only operation, registered for one test: it paints the selection one grey level
    (``--level``) without any model, so registry dispatch can be checked through every front end."""
    from typing import Literal

    import promptpaint.operations.base as base
    from promptpaint.operations import Operation
    from promptpaint.options import EditOptions
    from promptpaint.pipeline.editing import Generated

    class BlackoutEdit(EditOptions):
        """Paint the selection one grey level."""

        op: Literal["blackout"] = "blackout"
        level: int = 0

    class Blackout(Operation):
        """Paint the selection one grey level (a test operation: no model)."""

        name = "blackout"
        options = BlackoutEdit
        generator = None

        def steps(self, job):
            seg = yield from job.select(dilate=job.resolve("dilate", 0))
            painted = job.image.rgb.copy()
            painted[seg.mask] = job.edit.level
            return job.result(Generated([painted], []), seg.mask.astype(np.float32), segmentation=seg)

    yield Blackout
    base._REGISTRY.pop("blackout", None)
