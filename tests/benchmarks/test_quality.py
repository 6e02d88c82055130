"""The quality harness (benchmarks/quality.py) and its oracle inpainters: a small run as CI's smoke
test (fidelity, one sun, matched seams, the JSON's shape), the oracles' behaviour, the measures on
hand-made images, and that the oracles do catch the failure modes they act out."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import quality as Q
from benchmarks.oracles import SUN, CoherenceOracle, SeamOracle, count_suns
from promptpaint.core import masks as M
from promptpaint.pipeline.pipeline import Pipeline


@pytest.fixture(scope="module")
def report():
    """One photo, every mask shape, a 1600x1200 new background: a few seconds."""
    return Q.measure(photos=("chelsea",), coherence_size=(1600, 1200), log=lambda line: None)


def test_smoke_run_meets_the_fidelity_coherence_and_matched_seam_targets(report):
    assert report["changed_outside"] == 0 and report["size_ok"]
    assert report["coherence"]["suns"] == 1
    assert report["seam"]["matched"] <= Q.TARGETS["seam_matched_max"]
    assert {"seam_matched_max", "suns", "changed_outside"} <= {k for k, ok in report["targets"].items() if ok}


def test_every_case_reports_its_calls_and_generated_pixels(report):
    seams, (coherence,) = report["cases"][:-1], report["cases"][-1:]
    assert [c["shape"] for c in seams] == list(Q.SHAPES)
    for case in report["cases"]:
        assert case["generated_pixels"] > 0 and sum(case["calls"].values()) >= 1
    thin = next(c for c in seams if c["shape"] == "thin")
    assert thin["calls"]["prefill"] == 1  # a removal by a diffusion model is pre-filled
    assert coherence["calls"]["generate"] == 1 and coherence["calls"]["refine"] > 1
    assert report["seam"]["unmatched"] == max(c["seam_unmatched"] for c in seams)
    json.dumps(report)  # all of it serialises


def test_the_command_line_writes_the_json(tmp_path, monkeypatch):
    monkeypatch.setattr(Q, "PHOTOS", ("chelsea",))
    monkeypatch.setattr(Q, "SHAPES", ("object",))
    monkeypatch.setattr(Q, "COHERENCE_SIZE", (800, 600))
    out = tmp_path / "q.json"
    status = Q.main(["--json", str(out), "--outputs", str(tmp_path / "images")])
    written = json.loads(out.read_text())
    assert {"seam", "coherence", "changed_outside", "cases", "targets"} <= written.keys()
    assert {"matched", "unmatched"} <= written["seam"].keys() and written["coherence"]["suns"] == 1
    assert status == (0 if all(written["targets"].values()) else 1)
    assert (tmp_path / "images" / "seam-chelsea-object-matched.png").exists()


# ---------------------------------------------------------------- the measures


def test_seam_score_is_1_for_an_untouched_photo_and_exact_for_a_step():
    # A ramp of 1 level per pixel; the edit covers x >= 10 and lifts it by 12 levels. The band is
    # x = 7 .. 12; central differences see the step at x = 9 and 10 (1 + 12 / 2 each), so the mean
    # gradient there is (4 * 1 + 2 * 7) / 6 = 3 times the photo's.
    ramp = np.broadcast_to(np.arange(30, dtype=np.uint8)[None, :, None] + 100, (16, 30, 3)).copy()
    weights = np.zeros((16, 30), np.float32)
    weights[:, 10:] = 1
    assert Q.seam_score(ramp, ramp, weights) == 1.0
    assert Q.seam_band(weights)[0].nonzero()[0].tolist() == [7, 8, 9, 10, 11, 12]
    stepped = ramp + np.uint8(12) * (weights > 0)[..., None].astype(np.uint8)
    assert Q.seam_score(ramp, stepped, weights) == pytest.approx(3.0)


def test_seam_band_is_two_pixels_either_side_of_the_effective_edge():
    weights = np.zeros((20, 20), np.float32)
    weights[5:15, 5:15] = 0.5
    band = Q.seam_band(weights)
    assert band[10, 3:7].all() and band[10, 13:17].all()  # 4, 5 | 14, 15 and their neighbours
    assert not band[10, 10] and not band[10, 1] and not band[10, 18]


def test_changed_outside_counts_pixels_of_weight_0_only():
    before = np.zeros((4, 4, 3), np.uint8)
    after = before.copy()
    after[0, 0, 1] = 1  # outside
    after[2, 2] = 9  # inside
    weights = np.zeros((4, 4), np.float32)
    weights[2:, 2:] = 1
    assert Q.changed_outside(before, after, weights) == 1


# ---------------------------------------------------------------- the oracles


def test_coherence_oracle_paints_one_sun_where_seed_and_prompt_say():
    crop = np.full((256, 256, 3), 60, np.uint8)
    mask = np.zeros((256, 256), bool)
    mask[:, 64:] = True
    oracle = CoherenceOracle()
    a, b = oracle.inpaint([crop, crop], mask, prompt="a beach", seeds=[1, 2], strength=1.0)
    (c,) = oracle.inpaint([crop], mask, prompt="a lake", seeds=[1], strength=1.0)
    assert count_suns(a) == count_suns(b) == count_suns(c) == 1
    sun_at = lambda im: tuple(np.argwhere((im == SUN).all(-1)).mean(0).round())  # noqa: E731
    assert len({sun_at(a), sun_at(b), sun_at(c)}) == 3
    assert (a[~mask] == 60).all()  # only the mask is painted


def test_coherence_oracle_only_adds_faint_texture_below_half_strength():
    crop = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    mask = np.ones((128, 128), bool)
    (out,) = CoherenceOracle().inpaint([crop], mask, prompt="a beach", seeds=[1], strength=0.35)
    assert np.abs(out.astype(int) - crop).max() <= 3 and count_suns(out) == 0


def test_seam_oracle_drifts_the_whole_crop_and_continues_the_context_at_the_mask():
    crop = Q.photo("coffee")[:256, :256]
    mask = np.zeros((256, 256), bool)
    mask[64:192, 64:192] = True
    (clean,) = SeamOracle(drift=0).inpaint([crop], mask, prompt="x", seeds=[3], strength=1.0)
    (drifted,) = SeamOracle().inpaint([crop], mask, prompt="x", seeds=[3], strength=1.0)
    np.testing.assert_array_equal(clean[~mask], crop[~mask])  # no drift: the context comes back as given
    edge = mask & ~M.erode(mask, 1)
    assert np.abs(clean[edge].astype(int) - crop[edge]).mean() < 4  # continuous at the mask's edge
    inner = M.erode(mask, 40)
    assert np.abs(clean[inner].astype(int) - crop[inner]).mean() > 10  # new content inside
    assert np.abs(drifted[~mask].astype(int) - crop[~mask]).mean() > 3  # the drift shows in the ring


def test_the_oracles_catch_independent_full_strength_tiles():
    # The same new background, once through the coarse-to-fine path, once tiled at full strength
    # (the coherence oracle announced as a remover, which is how removers are tiled): a sun per tile.
    size = (1600, 1200)
    rgb, subject = Q.photo("coffee", size), Q.shape_mask("background", size)
    oracle = CoherenceOracle()
    coarse_to_fine = Q.run_edit("background", rgb, subject, oracle, prompt="a beach", seed=1)
    tiled = Pipeline(remover=_AsRemover(oracle), device="cpu").remove(rgb, mask=~subject, prompt="a beach", seed=1)
    assert count_suns(coarse_to_fine.image) == 1
    assert count_suns(tiled.image) > 3 and len(tiled.windows) > 3


class _AsRemover:
    """The coherence oracle announced as a remover: tiles at full strength, no refinement."""

    model_id = "oracle:coherence-as-remover"
    family = "oracle"
    working_size, multiple, upscale, min_context, needs_prompt, takes_negative_prompt = 256, 8, False, 0, False, False
    scheduler, lora, has_fast_mode, shows_previews = None, None, False, False
    batches = False
    default_steps = default_guidance = default_strength = None

    def __init__(self, oracle):
        self.oracle = oracle

    def inpaint(self, images, mask, **kwargs):
        return self.oracle.inpaint(images, mask, **{**kwargs, "strength": 1.0})
