"""backends.matting: ViTMatte through the registry, equal to transformers' documented route, in
windows at native resolution for large photos."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.backends.matting import VitMatte, load_matter
from promptpaint.backends.registry import MATTER_FAMILIES, resolve
from promptpaint.core import alpha as A
from promptpaint.core.geometry import Window
from promptpaint.errors import ModelLoadError

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def matter(tiny):
    return load_matter(resolve(str(tiny["vitmatte"]), MATTER_FAMILIES, "matting model"), "cpu", "auto")


def photo_and_trimap(height: int, width: int, box: tuple[int, int, int, int], seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return image, A.make_trimap(mask, inner=4, outer=6)


def documented_route(folder, image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """transformers' documentation for VitMatteForImageMatting, word for word: PIL images in,
    ``processor(images=image, trimaps=trimap, return_tensors="pt")``, ``model(**inputs).alphas``."""
    from PIL import Image
    from transformers import VitMatteForImageMatting, VitMatteImageProcessor

    processor = VitMatteImageProcessor.from_pretrained(folder)
    model = VitMatteForImageMatting.from_pretrained(folder)
    inputs = processor(images=Image.fromarray(image).convert("RGB"), trimaps=Image.fromarray(trimap).convert("L"),
                       return_tensors="pt")
    with torch.no_grad():
        alphas = model(**inputs).alphas
    return alphas[0, 0, :image.shape[0], :image.shape[1]].numpy()


def test_alias_and_family(tiny):
    ref = resolve("vitmatte", MATTER_FAMILIES, "matting model")
    assert (ref.source, ref.family) == ("hustvl/vitmatte-small-composition-1k", "vitmatte")
    assert resolve(str(tiny["vitmatte"])).family == "vitmatte"  # read from config.json's model_type
    with pytest.raises(ModelLoadError, match="sam model and cannot be used as the matting model"):
        resolve(str(tiny["sam"]), MATTER_FAMILIES, "matting model")


def test_loaded_once_with_declared_capabilities(tiny, matter):
    again = load_matter(resolve(str(tiny["vitmatte"]), MATTER_FAMILIES), "cpu", "auto")
    assert again is matter
    assert isinstance(matter, VitMatte)
    assert (matter.family, matter.window, matter.multiple) == ("vitmatte", 1024, 32)
    assert matter.overlap < matter.window and matter.context > 0


def test_one_window_equals_the_documented_route(tiny, matter):
    """A photo smaller than a window, not a multiple of 32 (so the processor pads): one window,
    the whole photo, and the same alphas as the documentation's route."""
    image, trimap = photo_and_trimap(90, 120, (30, 20, 90, 70))
    assert A.matting_windows(trimap == A.UNKNOWN, matter.window, matter.overlap, matter.context) == \
        [Window(0, 0, 120, 90)]
    ours = matter.matte(image, trimap)
    theirs = documented_route(tiny["vitmatte"], image, trimap)
    assert ours.shape == (90, 120) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    assert ours.std() > 0.01  # not a constant: the comparison means something


def test_large_photo_in_windows_at_native_resolution(monkeypatch, matter):
    """Small windows stand in for a large photo: every unknown pixel gets a value, only windows
    with unknown pixels run, each at the photo's own resolution, and a pixel seen by one window
    only has exactly that window's prediction."""
    monkeypatch.setattr(matter, "window", 128)
    monkeypatch.setattr(matter, "overlap", 32)
    monkeypatch.setattr(matter, "context", 16)
    image, trimap = photo_and_trimap(300, 500, (40, 40, 200, 260))  # the right side has no band
    seen = []
    predict = matter.predict

    def spy(window_image, window_trimap):
        seen.append(window_image.shape[:2])
        return predict(window_image, window_trimap)

    monkeypatch.setattr(matter, "predict", spy)
    steps = []
    alpha = matter.matte(image, trimap, progress=lambda done, total: steps.append((done, total)))
    windows = A.matting_windows(trimap == A.UNKNOWN, 128, 32, 16)
    assert len(seen) == len(windows) > 1
    assert steps[-1] == (len(windows), len(windows))
    assert all(max(shape) <= 128 for shape in seen)
    assert all(w.x1 <= 200 + 6 + 16 + 32 for w in windows)
    band = trimap == A.UNKNOWN
    assert (alpha[band] > 0).all() and (alpha[band] < 1).all()  # sigmoid outputs: every pixel covered
    counts = np.zeros(trimap.shape, int)
    for w in windows:
        counts[w.slices] += 1
    first = windows[0]
    alone = (counts[first.slices] == 1) & band[first.slices]
    assert alone.any()
    expected = predict(image[first.slices], trimap[first.slices])
    np.testing.assert_allclose(alpha[first.slices][alone], expected[alone], atol=1e-6)


def test_no_band_no_model_call(monkeypatch, matter):
    monkeypatch.setattr(matter, "predict", lambda *a: pytest.fail("the model ran without unknown pixels"))
    trimap = np.zeros((40, 60), np.uint8)
    trimap[10:20, 10:20] = A.FOREGROUND
    assert (matter.matte(np.zeros((40, 60, 3), np.uint8), trimap) == 0).all()


def test_mismatched_trimap_is_refused(matter):
    with pytest.raises(ValueError, match="does not match"):
        matter.matte(np.zeros((40, 60, 3), np.uint8), np.zeros((40, 61), np.uint8))
