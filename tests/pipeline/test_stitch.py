"""Crop-and-stitch with fake models: they paint solid colours and record what they were given, so
the plan (windows, sizes, strengths), the untouched pixels, the blend ramps, the coarse-to-fine
refinement, the colour matching and the pre-fill can be checked exactly."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.core import masks as M
from promptpaint.core.geometry import Window
from promptpaint.pipeline.batching import drive
from promptpaint.pipeline.stitch import (GENERATE, PREFILL, REFINE, ModelStep, StitchSettings, WindowJob, job_size,
                                         plan_passes, plan_windows, steps_at_strength, resize_image, ring, stitch_steps)

PLAIN = dict(color_match=False)  # the fakes paint solid crops: a "drift" colour matching would undo


def stitch(images, weights, model, settings):
    """Crop-and-stitch driven by a plain function ``model(step: ModelStep) -> repainted crops``."""
    return drive(stitch_steps(images, weights, settings), model)


class FakeModel:
    """Returns solid images (one colour per call) and records the steps it got."""

    def __init__(self, colours=(200,)):
        self.colours = list(colours)
        self.calls: list[ModelStep] = []

    def __call__(self, step: ModelStep):
        colour = self.colours[len(self.calls) % len(self.colours)]
        self.calls.append(ModelStep(step.role, [c.copy() for c in step.crops], step.mask.copy(), step.strength))
        return [np.full_like(c, colour) for c in step.crops]

    @property
    def sizes(self):
        return [(call.crops[0].shape[1], call.crops[0].shape[0]) for call in self.calls]


def noise(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def square(shape, x0, y0, side):
    mask = np.zeros(shape, bool)
    mask[y0:y0 + side, x0:x0 + side] = True
    return mask


def summary(passes):
    return [(p.role, p.window, p.model_size, p.strength) for p in passes]


# ---------------------------------------------------------------- planning


def test_small_mask_in_a_big_image_is_generated_at_the_working_size():
    image = noise(1500, 2000)
    mask = square((1500, 2000), 1000, 700, 60)
    model = FakeModel()
    (out,), jobs = stitch([image], M.feather(mask, 6), model, StitchSettings(working_size=512))
    # 60 px + 30 px padding a side = 120, grown to min_side 256 around the mask, then enlarged to 512
    assert jobs == [WindowJob(Window(902, 602, 1158, 858), (512, 512), GENERATE)]
    assert model.sizes == [(512, 512)]
    (crop,), crop_mask = model.calls[0].crops, model.calls[0].mask
    np.testing.assert_array_equal(crop, resize_image(image[602:858, 902:1158], (512, 512)))
    assert crop_mask.shape == (512, 512) and crop_mask.dtype == bool
    # the mask the model sees is the edit area (window pixels 92..164: 60 px + 6 px feather a side)
    # scaled 2x
    assert M.mask_bbox(crop_mask) == Window(184, 184, 328, 328)


def test_far_apart_regions_get_their_own_windows_close_ones_share():
    settings = StitchSettings(working_size=512)
    far = square((1500, 2000), 100, 100, 60) | square((1500, 2000), 1500, 1000, 60)
    assert plan_windows(far, settings) == [Window(2, 2, 258, 258), Window(1402, 902, 1658, 1158)]
    close = square((1500, 2000), 100, 100, 60) | square((1500, 2000), 220, 100, 60)
    assert plan_windows(close, settings) == [Window(2, 2, 378, 258)]


def test_two_regions_two_model_calls_at_working_size():
    image = noise(1500, 2000)
    mask = square((1500, 2000), 100, 100, 60) | square((1500, 2000), 1500, 1000, 60)
    model = FakeModel(colours=(10, 240))
    (out,), jobs = stitch([image], mask.astype(np.float32), model, StitchSettings(working_size=512, **PLAIN))
    assert [job.window for job in jobs] == [Window(2, 2, 258, 258), Window(1402, 902, 1658, 1158)]
    assert model.sizes == [(512, 512), (512, 512)]
    assert (out[100:160, 100:160] == 10).all() and (out[1000:1060, 1500:1560] == 240).all()
    np.testing.assert_array_equal(out[~mask], image[~mask])


def test_removers_work_at_the_crops_own_resolution():
    settings = StitchSettings(working_size=512, upscale=False)
    assert settings.min_side() == 0
    mask = square((1500, 2000), 100, 100, 60)
    # no minimum side: just the 30 px padding
    assert plan_windows(mask, settings) == [Window(70, 70, 190, 190)]


def test_a_model_that_declares_a_minimum_context_gets_it():
    """LaMa (min_context 256) sees a small hole with 256 px around it, not 30 px of border."""
    settings = StitchSettings(working_size=1024, upscale=False, min_context=256)
    assert settings.min_side() == 256
    mask = square((1500, 2000), 100, 100, 60)
    assert plan_windows(mask, settings) == [Window(2, 2, 258, 258)]
    near_edge = square((300, 2000), 5, 5, 20)  # the window stays inside the image
    assert plan_windows(near_edge, settings) == [Window(0, 0, 256, 256)]
    assert StitchSettings(working_size=512, min_context=128).min_side() == 256  # the larger rule wins


@pytest.mark.parametrize("window, settings, expected", [
    (Window(0, 0, 256, 256), StitchSettings(512), (512, 512)),
    (Window(0, 0, 2000, 1000), StitchSettings(512), (728, 360)),
    (Window(0, 0, 1000, 1000), StitchSettings(1024, multiple=64), (1024, 1024)),
    # removers: never enlarged, only large crops shrunk to the working size
    (Window(0, 0, 200, 120), StitchSettings(512, upscale=False), (200, 120)),
    (Window(0, 0, 1000, 500), StitchSettings(512, upscale=False), (512, 256)),
    (Window(0, 0, 3000, 100), StitchSettings(1024, upscale=False), (1024, 32)),
    (Window(5, 5, 8, 8), StitchSettings(512, upscale=False), (8, 8)),
])
def test_job_size(window, settings, expected):
    assert job_size(window, settings) == expected


def test_a_strongly_shrunk_region_is_generated_once_then_refined_at_native_resolution():
    # A 1200x600 photo, all of it edited, a 256 px model: the whole window is generated once at
    # 360x184 (3.3x smaller), then refined by 256 px tiles at their own size, overlapping by at
    # least 32 px (6 columns from x = 0 to 944, 3 rows from y = 0 to 344), at strength 0.35.
    passes = plan_passes(np.ones((600, 1200), bool), StitchSettings(working_size=256))
    xs, ys = (0, 189, 378, 566, 755, 944), (0, 172, 344)
    assert summary(passes) == [(GENERATE, Window(0, 0, 1200, 600), (360, 184), None)] + [
        (REFINE, Window(x, y, x + 256, y + 256), (256, 256), 0.35) for y in ys for x in xs]
    # each tile refines what no earlier tile did (and blends a ramp over the overlap)
    assert passes[1].fresh.all() and passes[2].fresh.sum() == (445 - 256) * 256


@pytest.mark.parametrize("side, refined", [(1024, False), (1100, True)])
def test_refinement_starts_past_twice_the_working_size(side, refined):
    mask = np.zeros((side, side), bool)
    mask[100:side - 100, 100:side - 100] = True
    passes = plan_passes(mask, StitchSettings(working_size=512))
    assert passes[0].role == GENERATE and passes[0].window == Window(0, 0, side, side)
    assert passes[0].model_size == (512, 512)
    assert {p.role for p in passes[1:]} == ({REFINE} if refined else set())
    assert all(p.model_size == (512, 512) and p.strength == 0.35 for p in passes[1:])


def test_refine_off_or_a_small_region_is_one_window():
    big = np.ones((600, 1200), bool)
    assert summary(plan_passes(big, StitchSettings(256, refine=False))) == [
        (GENERATE, Window(0, 0, 1200, 600), (360, 184), None)]
    small = square((600, 1200), 500, 200, 100)
    assert summary(plan_passes(small, StitchSettings(256, refine_strength=0.4))) == [
        (GENERATE, Window(450, 150, 650, 350), (256, 256), None)]


def test_prefill_comes_before_the_coarse_pass_of_each_window():
    mask = square((1500, 2000), 100, 100, 60) | square((1500, 2000), 1500, 1000, 60)
    passes = plan_passes(mask, StitchSettings(512, prefill=True))
    assert summary(passes) == [
        (PREFILL, Window(2, 2, 258, 258), (512, 512), None), (GENERATE, Window(2, 2, 258, 258), (512, 512), None),
        (PREFILL, Window(1402, 902, 1658, 1158), (512, 512), None),
        (GENERATE, Window(1402, 902, 1658, 1158), (512, 512), None)]


def test_removers_tile_at_full_strength_and_never_refine():
    passes = plan_passes(np.ones((600, 1200), bool), StitchSettings(256, upscale=False, prefill=True))
    # tiles of at most 2 x 256 = 512, overlapping by at least 32, each shrunk to at most 256
    assert summary(passes) == [(GENERATE, Window(x, y, x + 512, y + 512), (256, 256), None)
                               for y in (0, 88) for x in (0, 344, 688)]


@pytest.mark.parametrize("steps, strength, expected", [
    (25, 0.35, 25), (2, 0.35, 3), (1, 0.3, 4), (2, 0.5, 2), (1, 0.1, 10), (4, 1.0, 4)])
def test_steps_at_strength_always_leave_one_denoising_step(steps, strength, expected):
    assert steps_at_strength(steps, strength) == expected
    assert int(steps_at_strength(steps, strength) * strength) >= 1


# ---------------------------------------------------------------- untouched pixels and blending


def test_pixels_with_weight_0_are_byte_identical():
    image = noise(120, 160, seed=1)
    weights = M.feather(square((120, 160), 50, 40, 20) | square((120, 160), 120, 90, 10), 5)
    model = FakeModel(colours=(0, 255))
    out, jobs = stitch([image, image.copy()], weights, model, StitchSettings(working_size=64))
    assert len(jobs) >= 1
    for variant in out:
        np.testing.assert_array_equal(variant[weights == 0], image[weights == 0])
        assert not np.array_equal(variant[weights > 0], image[weights > 0])


def test_blend_weights_give_exact_values():
    image = np.full((40, 40, 3), 100, np.uint8)
    weights = np.zeros((40, 40), np.float32)
    weights[10:20, 10:20] = 1.0
    weights[10:20, 20:22] = 0.5
    weights[10:20, 22:23] = 0.25
    (out,), _ = stitch([image], weights, FakeModel(colours=(200,)), StitchSettings(working_size=64, **PLAIN))
    assert (out[10:20, 10:20] == 200).all()
    assert (out[10:20, 20:22] == 150).all()
    assert (out[10:20, 22] == 125).all()
    np.testing.assert_array_equal(out[weights == 0], image[weights == 0])


def test_every_variant_gets_its_own_result():
    image = noise(50, 50)
    calls = []

    def per_variant(step):
        calls.append(len(step.crops))
        return [np.full_like(c, 30 * (i + 1)) for i, c in enumerate(step.crops)]

    mask = square((50, 50), 20, 20, 5).astype(np.float32)
    out, _ = stitch([image, image, image], mask, per_variant, StitchSettings(working_size=64, **PLAIN))
    assert calls == [3]
    assert [int(v[22, 22, 0]) for v in out] == [30, 60, 90]


def test_nothing_to_edit_calls_no_model_and_returns_copies():
    image = noise(30, 30)
    model = FakeModel()
    out, jobs = stitch([image], np.zeros((30, 30), np.float32), model, StitchSettings(working_size=64))
    assert jobs == [] and model.calls == []
    np.testing.assert_array_equal(out[0], image)
    assert out[0] is not image


# ---------------------------------------------------------------- remover tiles


def test_large_region_is_split_into_overlapping_tiles_that_cover_it():
    h, w = 500, 700
    image = noise(h, w, seed=2)
    mask = np.zeros((h, w), bool)
    mask[40:460, 60:650] = True
    weights = M.feather(mask, 4)
    settings = StitchSettings(working_size=128, upscale=False)  # tiles of at most 2 * 128 = 256 px, overlap 16
    model = FakeModel(colours=(250,))
    (out,), jobs = stitch([image], weights, model, settings)
    windows = [job.window for job in jobs]
    assert len(windows) > 1
    assert all(win.width <= 256 and win.height <= 256 for win in windows)
    assert all(job.model_size == job_size(job.window, settings) for job in jobs)
    covered = np.zeros((h, w), bool)
    for win in windows:
        covered[win.slices] = True
    assert covered[weights > 0].all()
    # neighbouring tiles overlap by at least the tile overlap
    xs = sorted({(win.x0, win.x1) for win in windows})
    assert all(a[1] - b[0] >= 16 for a, b in zip(xs, xs[1:]))
    # every fully weighted pixel was generated, nothing outside the edit moved
    assert (out[weights == 1] == 250).all()
    np.testing.assert_array_equal(out[weights == 0], image[weights == 0])


def test_tile_seams_are_blended_with_the_documented_ramp():
    # A 300 px strip, tiles of 128 px (working 64 x max_downscale 2), overlap 8:
    # tiles start at 0, 86 and 172. Each later tile repaints an 8 px band of the pixels already
    # filled with weight 1 - d / 9, d the distance to its fresh pixels.
    image = np.zeros((64, 300, 3), np.uint8)
    weights = np.ones((64, 300), np.float32)
    model = FakeModel(colours=(40, 220, 130))
    (out,), jobs = stitch([image], weights, model, StitchSettings(working_size=64, upscale=False))
    assert [job.window for job in jobs] == [Window(0, 0, 128, 64), Window(86, 0, 214, 64), Window(172, 0, 300, 64)]
    assert [job.model_size for job in jobs] == [(64, 32)] * 3
    row = out[0, :, 0].astype(int)
    assert (out[..., 0] == out[:1, :, 0]).all() and (out == out[..., :1]).all()
    assert (row[:120] == 40).all()
    # x = 120 .. 127: d = 8 .. 1, weight 1/9 .. 8/9 of 220 over 40
    assert row[120:128].tolist() == [60, 80, 100, 120, 140, 160, 180, 200]
    assert (row[128:206] == 220).all()
    # x = 206 .. 213: weight 1/9 .. 8/9 of 130 over 220
    assert row[206:214].tolist() == [210, 200, 190, 180, 170, 160, 150, 140]
    assert (row[214:] == 130).all()
    # the second model call sees the band and its fresh pixels: 8 + 86 of its 128 columns
    second_mask = model.calls[1].mask
    assert second_mask.shape == (32, 64)
    assert second_mask.all(axis=0).sum() == round((8 + 86) / 2)


# ---------------------------------------------------------------- coarse to fine


def test_refine_tiles_start_from_the_coarse_result_and_keep_its_colours():
    # A 640x320 photo, all of it edited, a 64 px model: one coarse call paints everything 90, then
    # 64 px refine tiles (strength 0.35) each see the coarse result and paint it 91.
    image = noise(320, 640, seed=3)
    weights = np.ones((320, 640), np.float32)
    model = FakeModel(colours=(90, 91))
    (out,), jobs = stitch([image], weights, model, StitchSettings(working_size=64, **PLAIN))
    assert jobs[0] == WindowJob(Window(0, 0, 640, 320), (88, 48), GENERATE)
    assert all(job.role == REFINE and job.model_size == (64, 64) for job in jobs[1:])
    assert [call.strength for call in model.calls] == [None] + [0.35] * (len(jobs) - 1)
    assert (model.calls[1].crops[0] == 90).all()  # the first tile sees the upscaled coarse picture
    assert set(np.unique(out)) <= {90, 91}


def test_refine_tiles_blend_over_each_other_and_never_touch_weight_0():
    image = noise(300, 600, seed=4)
    mask = np.zeros((300, 600), bool)
    mask[20:280, 30:570] = True
    weights = M.feather(mask, 6)
    (out,), jobs = stitch([image], weights, FakeModel(colours=(10, 250)), StitchSettings(working_size=64))
    assert sum(job.role == REFINE for job in jobs) > 10
    np.testing.assert_array_equal(out[weights == 0], image[weights == 0])


# ---------------------------------------------------------------- colour matching and pre-fill


class DriftingModel:
    """Paints ``colour`` where asked and adds ``drift`` to the whole crop, as a VAE shifts colours."""

    def __init__(self, colour, drift):
        self.colour, self.drift = colour, np.array(drift)

    def __call__(self, step):
        return [np.clip(np.where(step.mask[..., None], self.colour, c) + self.drift, 0, 255).astype(np.uint8)
                for c in step.crops]


def test_colour_matching_removes_a_constant_drift_exactly():
    # the window is the whole 64x64 image, the model's size: no resizing blurs the comparison
    image = noise(64, 64, seed=5) // 2 + 40
    mask = square((64, 64), 12, 12, 40)
    model = DriftingModel(colour=120, drift=(12, -7, 5))
    (matched,), jobs = stitch([image], mask.astype(np.float32), model, StitchSettings(working_size=64))
    (drifted,), _ = stitch([image], mask.astype(np.float32), model, StitchSettings(working_size=64, **PLAIN))
    assert jobs == [WindowJob(Window(0, 0, 64, 64), (64, 64), GENERATE)]
    assert (matched[mask] == 120).all()
    assert (drifted[mask] == [132, 113, 125]).all()
    np.testing.assert_array_equal(matched[~mask], image[~mask])


def test_the_ring_is_a_band_around_the_mask():
    mask = square((64, 64), 24, 24, 16)
    band = ring(mask)
    assert not (band & mask).any()
    assert band.sum() == (M.dilate(mask, 8) & ~mask).sum()  # 64 // 8 = 8 px


def test_prefill_fills_the_hole_before_the_coarse_pass():
    image = noise(64, 64, seed=6)
    mask = square((64, 64), 12, 12, 40)
    seen = []

    def model(step):
        seen.append(step)
        if step.role == PREFILL:  # a remover: fills the hole with 77 (and blurs the rest, which is ignored)
            return [np.full_like(c, 77) for c in step.crops]
        return [np.where(step.mask[..., None], 200, c).astype(np.uint8) for c in step.crops]

    (out,), jobs = stitch([image], mask.astype(np.float32), model, StitchSettings(working_size=64, prefill=True))
    assert [job.role for job in jobs] == [PREFILL, GENERATE]
    given = seen[1].crops[0]
    assert (given[mask] == 77).all()
    np.testing.assert_array_equal(given[~mask], image[~mask])  # the ring stays the photo
    assert (out[mask] == 200).all()
    np.testing.assert_array_equal(out[~mask], image[~mask])
