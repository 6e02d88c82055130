"""The real-weight acceptance script (benchmarks/acceptance.py), run here with the tiny kit on small
photos: every edit gets its row, images and recipe, a failing edit is reported and the rest go on."""

from __future__ import annotations

import json

from benchmarks import acceptance


def test_acceptance_writes_a_page_with_every_edit(tiny, tmp_path):
    out = tmp_path / "acceptance"
    names = ["replace", "new-background", "remove", "outpaint", "segment", "big-new-background", "remove-by-diffusion"]
    status = acceptance.main([
        "--out", str(out), "--device", "cpu", "--detector", str(tiny["grounding-dino"]), "--segmenter",
        str(tiny["sam"]), "--inpainter", str(tiny["sd-inpaint"]), "--remover", str(tiny["lama"]), "--steps", "1",
        "--box-threshold", "0", "--text-threshold", "0", "--scale", "0.1", "--only", *names])
    report = json.loads((out / "acceptance.json").read_text())
    assert [e["name"] for e in report["edits"]] == names
    assert status == (1 if any(e["error"] for e in report["edits"]) else 0)
    page = (out / "index.html").read_text()
    for i, edit in enumerate(report["edits"]):
        assert edit["name"] in page and edit["command"].startswith("promptpaint ")
        folder = out / f"{i:02d}-{edit['name']}"
        assert (folder / "original.jpg").exists()
        if edit["error"]:
            assert "error: " in page
            continue
        assert (folder / "overlay.jpg").exists()
        if edit["name"] != "segment":
            assert (folder / "result.png").exists() and edit["recipe"]["seed"] == 1
            assert json.loads((folder / "recipe.json").read_text()) == edit["recipe"]
    by_name = {e["name"]: e for e in report["edits"]}
    # (a random tiny segmenter may select everything, leaving "keep" nothing to repaint; this one repaints)
    assert by_name["big-new-background"]["calls"]["generate"] >= 1
    # the diffusion removal runs with the inpainter in use, not a missing "sd15" (the random tiny
    # segmenter may select the whole photo, which a removal refuses)
    removal = by_name["remove-by-diffusion"]
    if removal["error"] is None:
        assert removal["recipe"]["remover"] == str(tiny["sd-inpaint"])
    else:
        assert "sd15" not in removal["error"] and "whole image" in removal["error"]
    assert report["header"]["steps"] == 1


def test_missing_models_fail_with_one_line_before_any_edit(tmp_path, capsys):
    status = acceptance.main(["--out", str(tmp_path), "--inpainter", str(tmp_path / "no-such-model"),
                              "--remover", "telea", "--only", "replace"])
    assert status == 4
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the acceptance needs its models") and "\n" not in err
    assert not (tmp_path / "index.html").exists()
