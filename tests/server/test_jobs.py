"""The server's job queue as the page sees a running edit: progress with an ETA, the latest live
preview (in the job's JSON and as a PNG), and what is left once the job ends. The work here is a
stand-in that reports as the pipeline does; no model is loaded."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from promptpaint.server import jobs  # noqa: E402
from promptpaint.server.app import create_app  # noqa: E402
from promptpaint.server.settings import ServerSettings  # noqa: E402


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_eta_is_the_steps_left_at_the_pace_of_the_latest_steps(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(jobs.time, "perf_counter", clock)
    job = jobs.QueuedJob(kind="test", work=lambda progress: None)
    job.report(1, 10)
    assert job.eta_s() is None  # one step says nothing about the pace
    for step, gap in ((2, 0.5), (3, 0.5), (4, 2.0)):
        clock.now += gap
        job.report(step, 10)
    assert job.eta_s() == 6 * 0.5  # the median gap: one slow step does not swing it
    assert job.to_json()["progress"] == {"step": 4, "steps": 10, "pass": 1, "eta_s": 3.0}
    clock.now += 9.0
    job.report(1, 20)  # a new pass (the next window or variant) starts from its own first step
    assert job.passes == 2 and job.to_json()["progress"]["pass"] == 2


def test_the_latest_preview_is_kept_with_its_version():
    job = jobs.QueuedJob(kind="test", work=lambda progress: None)
    job.report(1, 8)
    assert "preview" not in job.to_json()
    first = np.zeros((48, 64, 3), np.uint8)
    job.report(2, 8, preview=first)
    job.report(3, 8)
    second = np.full((48, 64, 3), 9, np.uint8)
    job.report(4, 8, preview=second)
    assert job.preview is second
    assert job.to_json()["preview"] == {"version": 2, "step": 4, "width": 64, "height": 48,
                                        "url": f"/v1/jobs/{job.id}/preview"}


@pytest.fixture()
def client(tiny):
    from promptpaint.options import ModelOptions

    models = ModelOptions(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]),
                          inpainter=str(tiny["sd-inpaint"]), remover="telea", device="cpu")
    with TestClient(create_app(ServerSettings(models=models, preload=False))) as test_client:
        yield test_client


def test_preview_endpoint_serves_the_running_jobs_latest_picture(client):
    state = client.app.state.server
    shown, release = threading.Event(), threading.Event()
    picture = np.zeros((32, 40, 3), np.uint8)
    picture[:, :20] = (250, 10, 10)

    def work(progress):
        progress(1, 4)
        progress(2, 4, preview=picture)
        shown.set()
        release.wait(30)
        progress(3, 4)

    job = state.jobs.submit(work, kind="test-preview")
    try:
        assert shown.wait(10)
        answer = client.get(f"/v1/jobs/{job.id}").json()
        assert answer["preview"]["version"] == 1 and answer["preview"]["step"] == 2
        png = client.get(answer["preview"]["url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.headers["x-promptpaint-preview-version"] == "1"
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.content))), picture)
    finally:
        release.set()
    job.future.result(timeout=10)
    deadline = time.monotonic() + 5
    while job.status != "done" and time.monotonic() < deadline:
        time.sleep(0.01)
    # A preview asked for just before the end still comes (the page polls, then fetches it) ...
    assert client.get(answer["preview"]["url"]).status_code == 200
    # ... until a client reads that the job is done: the result says the rest.
    assert "preview" not in client.get(f"/v1/jobs/{job.id}").json()
    assert job.preview is None
    gone = client.get(f"/v1/jobs/{job.id}/preview")
    assert gone.status_code == 404 and "no live preview" in gone.json()["detail"]
    assert client.get("/v1/jobs/nope/preview").status_code == 404
