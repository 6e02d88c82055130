"""benchmarks.matting: a smoke run with the tiny ViTMatte (figures' shape, no timing assertions)."""

from __future__ import annotations

import json

from benchmarks import matting


def test_smoke_run(tmp_path, tiny, monkeypatch, capsys):
    monkeypatch.setenv("PROMPTPAINT_TINY_MODELS", str(tiny["vitmatte"].parent))
    out = tmp_path / "matting.json"
    assert matting.main(["--models", "tiny", "--size", "256x192", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {f"{stage}_s" for stage in (*matting.STAGES, "documented", "load")} <= report.keys()
    assert report["total_s"] >= report["matte_s"] > 0
    assert report["windows"] == 1 and 0 < report["window_pixels"] <= report["photo_pixels"] == 256 * 192
    assert report["band_pixels"] > 0
    assert "documented" in capsys.readouterr().out


def test_subject_mask_is_a_centred_ellipse():
    mask = matting.subject_mask((100, 50))
    assert mask.shape == (50, 100)
    assert mask[25, 50] and not mask[0, 0] and not mask[25, 15] and mask[25, 25]
