"""core.alpha: trimaps, the final alpha, windows for the matting model, foreground colours."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.core import alpha as A
from promptpaint.core import masks as M
from promptpaint.core.geometry import Window
from promptpaint.errors import InvalidOptionError


def half_plane(height: int = 6, width: int = 40, edge: int = 20) -> np.ndarray:
    """Columns left of ``edge`` selected: distances to the edge are exact along each row."""
    mask = np.zeros((height, width), bool)
    mask[:, :edge] = True
    return mask


@pytest.mark.parametrize(("size", "px", "expected"), [
    ((1000, 500), None, 10), ((500, 1000), None, 10), ((100, 50), None, 3), ((4000, 3000), None, 40),
    ((1000, 500), 7, 7), ((1000, 500), 0, 0),
])
def test_band_width(size, px, expected):
    assert A.band_width(size, px) == expected


def test_band_width_refuses_negative():
    with pytest.raises(InvalidOptionError, match="band"):
        A.band_width((100, 100), -1)


def test_trimap_of_a_half_plane():
    trimap = A.make_trimap(half_plane(), inner=2, outer=3)
    # inside: kept when farther than 2 px from the outside (cols 0..17); outside: band up to 3 px (cols 20..22)
    row = [255] * 18 + [128] * 5 + [0] * 17
    assert trimap.dtype == np.uint8
    assert (trimap == np.array(row, np.uint8)).all()


def test_trimap_regions_are_erosion_and_dilation(cat_rgb):
    mask = np.zeros(cat_rgb.shape[:2], bool)
    mask[60:240, 100:300] = True
    mask[100:140, 300:380] = True
    trimap = A.make_trimap(mask, inner=5, outer=9)
    assert ((trimap == 255) == M.erode(mask, 5)).all()
    assert ((trimap > 0) == M.dilate(mask, 9)).all()
    assert set(np.unique(trimap)) == {0, 128, 255}


def test_soft_edge_ramps_across_the_band():
    alpha = A.soft_edge(half_plane(), inner=2, outer=3)[0]
    expected = np.zeros(40, np.float32)
    expected[:17] = 1.0
    expected[17:20] = [0.5 + 0.5 * d / 3 for d in (3, 2, 1)]  # 3, 2, 1 px inside the edge
    expected[20:23] = [0.5 - 0.5 * d / 4 for d in (1, 2, 3)]  # 1, 2, 3 px outside
    np.testing.assert_allclose(alpha, expected, atol=1e-6)


def test_soft_edge_thresholds_back_to_the_mask(cat_rgb):
    mask = cat_rgb[..., 0] > 120
    assert ((A.soft_edge(mask, 4, 6) >= 0.5) == mask).all()


def test_assembled_alpha_is_exact_off_the_band():
    rng = np.random.default_rng(0)
    mask = np.zeros((80, 120), bool)
    mask[20:60, 30:90] = True
    trimap = A.make_trimap(mask, inner=4, outer=6)
    predicted = rng.uniform(-0.5, 1.5, trimap.shape).astype(np.float32)  # out of range on purpose
    alpha = A.assemble_alpha(trimap, predicted)
    band = trimap == A.UNKNOWN
    assert alpha.dtype == np.uint8
    assert (alpha[trimap == A.BACKGROUND] == 0).all()
    assert (alpha[trimap == A.FOREGROUND] == 255).all()
    assert (alpha[band] == np.rint(np.clip(predicted[band], 0, 1) * 255)).all()
    soft = (alpha > 0) & (alpha < 255)
    assert soft.any() and not (soft & ~band).any()


def test_assemble_refuses_a_mismatched_alpha():
    with pytest.raises(ValueError, match="does not match"):
        A.assemble_alpha(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.float32))


# ---------------------------------------------------------------- windows

def test_one_window_around_a_small_band():
    unknown = np.zeros((200, 300), bool)
    unknown[50:60, 100:150] = True
    # box (100, 50, 150, 60) + 64 px context -> x 36..214 (178 px -> 192), y 0..124 (124 px -> 128)
    assert A.matting_windows(unknown, side=1024, overlap=128, context=64) == [Window(29, 0, 221, 128)]


def test_a_window_never_outgrows_the_photo():
    unknown = np.zeros((90, 120), bool)
    unknown[40:50, 50:70] = True
    assert A.matting_windows(unknown, side=1024, overlap=128, context=64) == [Window(0, 0, 120, 90)]


def test_no_unknown_pixel_no_window():
    assert A.matting_windows(np.zeros((50, 50), bool), 1024, 128, 64) == []


def test_window_weights_ramp_towards_the_edges():
    weights = A.window_weights(Window(0, 0, 6, 10), overlap=2)
    np.testing.assert_allclose(weights[5], [1 / 3, 2 / 3, 1, 1, 2 / 3, 1 / 3], atol=1e-6)  # a middle row
    np.testing.assert_allclose(weights[:, 2], [1 / 3, 2 / 3] + [1] * 6 + [2 / 3, 1 / 3], atol=1e-6)
    assert A.window_weights(Window(0, 0, 50, 40), 16).min() > 0


@pytest.fixture(scope="module")
def ring() -> np.ndarray:
    """The unknown band of a large photo: a ring around a subject on the left, nothing on the right."""
    mask = np.zeros((2000, 3000), bool)
    mask[300:1700, 200:1500] = True
    trimap = A.make_trimap(mask, inner=20, outer=20)
    return trimap == A.UNKNOWN


def test_windows_cover_every_unknown_pixel_exactly_once_after_blending(ring):
    windows = A.matting_windows(ring, side=1024, overlap=128, context=64)
    assert len(windows) > 1
    assert all(w.width <= 1024 and w.height <= 1024 for w in windows)
    assert all(ring[w.slices].any() for w in windows), "only windows with unknown pixels run"
    assert all(w.x1 <= 1500 + 20 + 64 + 64 for w in windows), "the empty right side gets no window"
    ones = A.blend_windows(ring.shape, windows, [np.ones((w.height, w.width), np.float32) for w in windows], 128)
    np.testing.assert_allclose(ones[ring], 1.0, atol=1e-6)  # the weights at each pixel sum to 1


def test_blending_keeps_agreeing_values_and_averages_only_overlaps(ring):
    windows = A.matting_windows(ring, side=1024, overlap=128, context=64)
    truth = np.random.default_rng(1).random(ring.shape, dtype=np.float32)
    blended = A.blend_windows(ring.shape, windows, [truth[w.slices] for w in windows], 128)
    np.testing.assert_allclose(blended[ring], truth[ring], atol=1e-5)  # windows that agree: unchanged
    # each window predicts its own index: pixels seen by one window only get exactly its value
    counts = np.zeros(ring.shape, int)
    for w in windows:
        counts[w.slices] += 1
    labels = A.blend_windows(ring.shape, windows, [np.full((w.height, w.width), i, np.float32)
                                                  for i, w in enumerate(windows)], 128)
    for i, w in enumerate(windows):
        alone = counts[w.slices] == 1
        np.testing.assert_allclose(labels[w.slices][alone], i, rtol=1e-6)
    shared = (counts > 1) & ring
    assert shared.any() and (labels[shared] != np.round(labels[shared])).any()


def test_blend_checks_it_got_one_value_per_window():
    with pytest.raises(ValueError):
        A.blend_windows((10, 10), [Window(0, 0, 5, 5)], [], 2)


# ---------------------------------------------------------------- foreground colours

def composited_edge(ramp: int = 40, subject=(200, 40, 40), backdrop=(30, 180, 30)):
    """A red subject over a green background with a soft vertical edge ``ramp`` px wide:
    (photo, alpha, F, B)."""
    height, width = 60, 200
    alpha = np.clip((120 - np.arange(width)) / ramp, 0, 1).astype(np.float32)
    alpha = np.broadcast_to(alpha, (height, width)).copy()
    fg = np.broadcast_to(np.array(subject, np.float32), (height, width, 3))
    bg = np.broadcast_to(np.array(backdrop, np.float32), (height, width, 3))
    photo = np.rint(alpha[..., None] * fg + (1 - alpha[..., None]) * bg).astype(np.uint8)
    return photo, alpha, fg, bg


@pytest.mark.parametrize("ramp", [4, 10, 40])
def test_foreground_estimate_removes_the_old_background(ramp):
    photo, alpha, fg, _ = composited_edge(ramp)
    estimate = A.estimate_foreground(photo, alpha) * 255
    soft = (alpha > 0.1) & (alpha < 0.9)
    assert np.abs(photo[soft].astype(np.float32) - fg[soft]).mean() > 50  # what the naive cut-out keeps
    assert np.abs(estimate[soft] - fg[soft]).mean() < 1.0


def test_foreground_estimate_on_a_photo(cat_rgb):
    """The cat composited onto green through a blurred box: the estimate finds the cat's colours
    (pymatting's estimate_foreground_ml measured 11.7 on this case, the naive cut-out 48.7)."""
    import cv2

    height, width = cat_rgb.shape[:2]
    alpha = np.zeros((height, width), np.float32)
    alpha[height // 5:4 * height // 5, width // 5:4 * width // 5] = 1
    alpha = cv2.GaussianBlur(alpha, (0, 0), 6)
    cat = cat_rgb.astype(np.float32)
    photo = np.rint(alpha[..., None] * cat + (1 - alpha[..., None]) * np.float32([20, 200, 20])).astype(np.uint8)
    soft = (alpha > 0.05) & (alpha < 0.95)
    naive = np.abs(photo[soft] - cat[soft]).mean()
    error = np.abs(A.estimate_foreground(photo, alpha)[soft] * 255 - cat[soft]).mean()
    assert naive > 45
    assert error < 13, (error, naive)


def test_recolour_band_touches_only_see_through_pixels():
    photo, alpha, fg, _ = composited_edge(ramp=10)
    trimap = np.zeros(alpha.shape, np.uint8)
    trimap[:, :100] = A.FOREGROUND
    trimap[:, 100:140] = A.UNKNOWN  # a band wider than the soft edge: alpha 255 and 0 in it too
    alpha8 = A.assemble_alpha(trimap, alpha)
    out = A.recolour_band(photo, alpha8, trimap)
    soft = (alpha8 > 0) & (alpha8 < 255)
    assert (out[~soft] == photo[~soft]).all(), "solid and empty pixels, in the band or not, are kept"
    assert np.abs(out[soft] - fg[soft]).mean() < 0.05 * np.abs(photo[soft] - fg[soft].astype(np.float32)).mean()


def test_recolour_band_without_a_soft_pixel_is_the_photo(cat_rgb):
    trimap = np.zeros(cat_rgb.shape[:2], np.uint8)
    trimap[50:100, 50:100] = A.UNKNOWN
    alpha8 = np.where(trimap > 0, 255, 0).astype(np.uint8)
    assert (A.recolour_band(cat_rgb, alpha8, trimap) == cat_rgb).all()
