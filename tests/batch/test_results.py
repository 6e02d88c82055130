"""The results manifest: torn lines, the last row wins, one run per OUTDIR, stale temporaries."""

from __future__ import annotations

import pytest

from promptpaint.batch.results import ResultsWriter, done_inputs, latest_rows, read_rows, remove_stale_temporaries
from promptpaint.errors import PromptPaintError


#: fast (OpenCV Telea after the tiny SAM): most tests check bookkeeping, not pixels
#: the tiny diffusion inpainter, where the seed decides the pixels
#: a row override that makes the tiny Grounding DINO find nothing (no box passes a threshold of 1)
# ------------------------------------------------------------------------------------------ helpers
# ------------------------------------------------------------------------------------------ results
def test_results_survive_a_torn_last_line_and_the_last_row_wins(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "manifest.jsonl").write_bytes(
        b'{"input": "a.jpg", "status": "failed"}\n{"input": "a.jpg", "status": "done", "output": "a.png"}\n'
        b'{"input": "b.jpg", "status": "do')  # killed in the middle of an append
    with ResultsWriter(tmp_path) as writer:
        writer.append({"input": "b.jpg", "status": "done", "output": "b.png"})
    rows = read_rows(tmp_path / "manifest.jsonl")
    assert [r["input"] for r in rows] == ["a.jpg", "a.jpg", "b.jpg"]
    assert latest_rows(rows)["a.jpg"]["status"] == "done"
    assert done_inputs(tmp_path) == {"a.jpg"}  # b.png is missing: b.jpg must be done again


def test_one_run_per_outdir_and_only_our_temporaries_are_swept(tmp_path):
    (tmp_path / "sub").mkdir()
    ours, theirs = tmp_path / "sub" / ".a.png.k3_x9QzB.tmp", tmp_path / ".notes.tmp"
    ours.write_bytes(b"half an image")
    theirs.write_bytes(b"a user's file")
    assert remove_stale_temporaries(tmp_path) == 1 and not ours.exists() and theirs.exists()
    with ResultsWriter(tmp_path), pytest.raises(PromptPaintError, match="another batch is running"):
        ResultsWriter(tmp_path)
    ResultsWriter(tmp_path).close()  # released
