"""Colour drift estimate and correction (core/color.py) on hand-made crops with exact answers."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.core.color import MIN_REFERENCE_PIXELS, Drift, estimate_drift, match_color, remove_drift


def photo(h=48, w=64, seed=0):
    """Values 40..215: room for drifts without clipping."""
    return np.random.default_rng(seed).integers(40, 216, (h, w, 3), dtype=np.uint8)


def ring_mask(h=48, w=64):
    reference = np.ones((h, w), bool)
    reference[12:36, 16:48] = False  # the hole
    return reference


def test_a_constant_drift_is_removed_exactly():
    before = photo()
    after = before.astype(int)
    after[~ring_mask()] = 128  # new content in the hole
    after = (after + [9, -6, 3]).astype(np.uint8)  # all of it drifted
    drift = estimate_drift(before, after, ring_mask())
    np.testing.assert_allclose(drift.offset, [9, -6, 3], atol=1e-9)
    np.testing.assert_allclose(drift.gain_minus_1, 0, atol=1e-12)
    corrected = remove_drift(after, drift)
    np.testing.assert_array_equal(corrected[ring_mask()], before[ring_mask()])
    assert (corrected[~ring_mask()] == 128).all()


def test_a_linear_drift_across_the_crop_is_removed_exactly():
    before = photo() // 2 + 60  # 80..167
    x = np.arange(64)[None, :, None]
    y = np.arange(48)[:, None, None]
    drift = x - y + np.array([5, 0, -20])  # integer levels: the correction rounds back exactly
    after = (before.astype(int) + drift).clip(0, 255).astype(np.uint8)
    assert (after.astype(int) == before.astype(int) + drift).all()  # no clipping happened
    corrected = match_color(before, after, ring_mask())
    np.testing.assert_array_equal(corrected, before)  # the hole too: it was only drifted here


def test_a_gain_is_removed_to_within_a_level():
    before = photo(seed=1)
    after = np.rint(before * 1.1 - 8).clip(0, 255).astype(np.uint8)
    drift = estimate_drift(before, after, ring_mask())
    np.testing.assert_allclose(1 + drift.gain_minus_1, 1.1, atol=2e-3)
    corrected = remove_drift(after, drift)
    assert np.abs(corrected.astype(int) - before).max() <= 1


def test_content_changed_in_the_reference_does_not_count_as_drift():
    # a tenth of the ring got something new (a shadow); the rest shows the true +10 drift
    before = photo(seed=2)
    after = (before.astype(int) + 10).astype(np.uint8)
    shadow = np.zeros(before.shape[:2], bool)
    shadow[:4, :] = True  # 256 of the ring's 2304 pixels
    after[shadow] = after[shadow] // 3
    drift = estimate_drift(before, after, ring_mask())
    np.testing.assert_allclose(drift.offset, 10, atol=1e-6)
    np.testing.assert_allclose(drift.slope_v, 0, atol=1e-6)


def test_too_few_reference_pixels_correct_nothing():
    before, after = photo(), photo(seed=3)
    reference = np.zeros(before.shape[:2], bool)
    reference.flat[:MIN_REFERENCE_PIXELS - 1] = True
    assert estimate_drift(before, after, reference).is_none
    np.testing.assert_array_equal(match_color(before, after, reference), after)


def test_a_flat_reference_gives_no_gain_only_an_offset():
    # no contrast to measure a gain on: the gain stays 1 instead of multiplying the hole's content
    before = np.full((48, 64, 3), 100, np.uint8)
    after = np.full((48, 64, 3), 112, np.uint8)
    after[~ring_mask()] = photo()[~ring_mask()]
    drift = estimate_drift(before, after, ring_mask())
    np.testing.assert_allclose(drift.gain_minus_1, 0, atol=1e-6)
    np.testing.assert_allclose(drift.offset, 12, atol=1e-6)
    corrected = remove_drift(after, drift)
    np.testing.assert_array_equal(corrected[~ring_mask()], photo()[~ring_mask()].astype(int) - 12)


def test_the_drift_applies_at_any_size():
    # fitted on a 32x24 crop, the same planar drift undone on a 64x48 one
    small = Drift(np.zeros(3), np.zeros(3), np.array([4.0, 0, 0]), np.array([10.0, 0, 0]), np.zeros(3))
    field = small.field((64, 48))
    assert field.shape == (48, 64, 3)
    assert field[0, 0, 0] == pytest.approx(4 + 10 * (0.5 / 64 * 2 - 1))
    assert field[0, -1, 0] == pytest.approx(4 + 10 * (1 - 0.5 / 64 * 2))
    assert (field[..., 1:] == 0).all()


def test_shapes_must_agree():
    with pytest.raises(ValueError):
        estimate_drift(photo(), photo(h=40), ring_mask())
