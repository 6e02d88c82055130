"""The HTTP API with the tiny models, through FastAPI's TestClient: every endpoint, every error status,
the queue (serialised jobs, 503 when full, progress, cancel)."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from promptpaint.core import rle  # noqa: E402
from promptpaint.core.images import image_hash, read_png_metadata  # noqa: E402
from promptpaint.options import ModelOptions  # noqa: E402
from promptpaint.server.app import create_app  # noqa: E402
from promptpaint.server.settings import ServerSettings  # noqa: E402


BOX = "40,30,120,100"  # inside the 160x128 test photo


EDIT = {"box": BOX, "prompt": "a small dog", "steps": 2, "seed": 11}


# ------------------------------------------------------------------------------------ fixtures
def png_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def decode(data: bytes | str) -> np.ndarray:
    raw = base64.b64decode(data) if isinstance(data, str) else data
    return np.asarray(Image.open(io.BytesIO(raw)))


@pytest.fixture(scope="module")
def photo(cat_rgb) -> np.ndarray:
    """A 160x128 crop of the cat: small, so the tiny inpainter needs only a couple of windows."""
    return np.ascontiguousarray(cat_rgb[60:188, 100:260])


@pytest.fixture(scope="module")
def photo_png(photo) -> bytes:
    return png_bytes(photo)


@pytest.fixture(scope="module")
def make_settings(tiny):
    def make(**overrides) -> ServerSettings:
        models = ModelOptions(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]),
                              inpainter=str(tiny["sd-inpaint"]), remover=str(tiny["lama"]),
                              matting=str(tiny["vitmatte"]), device="cpu")
        return ServerSettings(models=models, **overrides)

    return make


@pytest.fixture(scope="module")
def client(make_settings):
    """One warm server for most tests. ``sd15`` is allowed but not downloaded (a job that fails)."""
    app = create_app(make_settings(allow_models=["telea", "sd15"], max_pixels=1_000_000))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture()
def state(client):
    return client.app.state.server


def upload(client, png: bytes, name: str = "photo.png"):
    return client.post("/v1/images", files={"image": (name, png, "image/png")})


def post(client, path: str, png: bytes | None = None, options: dict | str | None = None,
         mask_png: bytes | None = None, **data):
    """A multipart request: the options as one JSON field (a str is sent as it is), other fields as given."""
    files = {}
    if png is not None:
        files["image"] = ("photo.png", png, "image/png")
    if mask_png is not None:
        files["mask"] = ("hole.png", mask_png, "image/png")
    if options is not None:
        data["options"] = options if isinstance(options, str) else json.dumps(options)
    return client.post(path, data=data, files=files or None)


def block_worker(state):
    """Occupy the single worker until the returned event is set."""
    release = threading.Event()
    job = state.jobs.submit(lambda progress: release.wait(30), kind="test-block")
    deadline = time.monotonic() + 10
    while job.status != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    return release, job


def rect_mask(shape, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    mask = np.zeros(shape, np.uint8)
    mask[y0:y1, x0:x1] = 255
    return mask


# ------------------------------------------------------------------------------------ service
def test_health_models_page_and_docs(client):
    health = client.get("/v1/health").json()
    assert health["status"] == "ok" and health["warm"] is True
    assert health["queue"] == {"running": 0, "waiting": 0, "capacity": 8}
    models = client.get("/v1/models").json()
    loaded = models["loaded"]
    assert set(loaded) == {"detector", "segmenter", "inpainter", "remover", "matting"}
    assert models["allowed"]["remover"] == [loaded["remover"], "telea", "sd15"]
    assert models["allowed"]["detector"] == [loaded["detector"]]
    assert models["allowed"]["matting"] == [loaded["matting"], "none"]  # none loads nothing: always allowed

    page = client.get("/")
    assert page.status_code == 200 and "<title>promptpaint</title>" in page.text
    assert 'src="/static/app.js"' in page.text and "cdn" not in page.text.lower()
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    docs = client.get("/docs")  # Swagger UI from local files: works without internet
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert "swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text.lower()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        assert client.get(f"/static-offline-docs/{name}").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/replace"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    options = body["properties"]["options"]["properties"]
    assert {"prompt", "find", "keep", "seed", "variants"} <= set(options) and "mask" not in options


def test_upload_once_then_refer_by_id(client, photo, photo_png):
    first = upload(client, photo_png).json()
    assert first == {"image_id": image_hash(photo), "width": 160, "height": 128, "has_alpha": False,
                     "format": "PNG"}
    assert upload(client, photo_png, "again.png").json()["image_id"] == first["image_id"]  # by content
    fetched = client.get(f"/v1/images/{first['image_id']}")
    assert fetched.headers["content-type"] == "image/png"
    assert np.array_equal(decode(fetched.content), photo)
    missing = client.get("/v1/images/0123")
    assert missing.status_code == 404 and "upload the image again" in missing.json()["detail"]


# ------------------------------------------------------------------------------------ select
def test_detect(client, photo_png):
    found = post(client, "/v1/detect", photo_png, {"find": "cat", "box_threshold": 0, "text_threshold": 0})
    assert found.status_code == 200
    data = found.json()
    assert data["image_size"] == [160, 128] and data["detections"]
    assert {"label", "score", "box"} <= set(data["detections"][0])
    nothing = post(client, "/v1/detect", image_id=data["image_id"], find="cat", box_threshold="1")
    assert nothing.status_code == 422
    assert nothing.json()["error"] == "NothingFoundError" and nothing.json()["labels"] == ["cat"]
    wrong = post(client, "/v1/detect", image_id=data["image_id"], find="cat", dilate="3")
    assert wrong.status_code == 422 and "--dilate: not an option of detect" in wrong.json()["detail"]


def test_segment_reuses_the_image_embedding(client, state, photo_png):
    image_id = upload(client, photo_png).json()["image_id"]
    segmenter = state.pipeline.segmenter()
    first = post(client, "/v1/segment", image_id=image_id, box=BOX, dilate="2")
    assert first.status_code == 200
    encoded = segmenter.encode_count
    for dilate in (0, 4, 8):  # slider moves: the same image again, no re-encoding
        again = post(client, "/v1/segment", options={"box": BOX, "dilate": dilate}, image_id=image_id)
        assert again.status_code == 200
    assert segmenter.encode_count == encoded
    data = first.json()
    mask = decode(data["mask_png"]) > 127
    assert mask.shape == (128, 160) and np.array_equal(mask, rle.decode(data["mask"]))
    assert data["mask_area"] == int(mask.sum()) and data["image_id"] == image_id
    as_png = client.post("/v1/segment?format=png&overlay=true", data={"image_id": image_id, "box": BOX,
                                                                     "dilate": "2"})
    assert as_png.headers["content-type"] == "image/png"
    assert np.array_equal(decode(as_png.content) > 127, mask)
    with_overlay = client.post("/v1/segment?overlay=true", data={"image_id": image_id, "box": BOX})
    assert decode(with_overlay.json()["overlay_png"]).shape == (128, 160, 3)


# ------------------------------------------------------------------------------------ edits
def test_replace_png_keeps_every_pixel_outside_the_mask(client, photo, photo_png):
    # An uploaded mask: the tiny SAM's random masks may cover the whole photo, which would prove nothing.
    hole_array = rect_mask(photo.shape[:2], (40, 30, 120, 100))
    hole = png_bytes(hole_array)
    options = {"prompt": "a small dog", "steps": 2, "seed": 11}
    as_png = post(client, "/v1/replace", photo_png, options, mask_png=hole)
    assert as_png.status_code == 200 and as_png.headers["content-type"] == "image/png"
    assert as_png.headers["x-promptpaint-seed"] == "11"
    result = decode(as_png.content)
    assert result.shape == photo.shape
    recipe = json.loads(read_png_metadata(as_png.content)["promptpaint"])
    assert recipe["edits"][0]["prompt"] == "a small dog" and recipe["edits"][0]["seed"] == 11

    as_json = post(client, "/v1/replace?format=json", photo_png, options, mask_png=hole).json()
    mask = decode(as_json["mask_png"]) > 127
    assert np.array_equal(decode(as_json["variants"][0]["image_png"]), result)  # same seed, same pixels
    assert mask.any() and not mask.all()
    assert np.array_equal(result[~mask], photo[~mask])
    assert np.array_equal(rle.decode(as_json["recipe"]["edits"][0]["mask"]), hole_array > 127)  # replays anywhere


def test_edit_options_as_json_body_and_form_fields(client, photo, photo_png):
    body = {"image": base64.b64encode(photo_png).decode(), "options": {**EDIT, "variants": 2}}
    data = client.post("/v1/replace?format=json", json=body).json()
    assert [v["seed"] for v in data["variants"]] == [11, 12]
    assert [v["recipe"]["edits"][0]["seed"] for v in data["variants"]] == [11, 12]
    one = client.post("/v1/replace?format=json", json={**body, "options": EDIT}).json()
    fields = {k: str(v) for k, v in EDIT.items()}
    as_fields = client.post("/v1/replace", data=fields, files={"image": ("p.png", photo_png, "image/png")})
    assert np.array_equal(decode(as_fields.content), decode(one["variants"][0]["image_png"]))


def test_remove_with_an_uploaded_mask(client, photo, photo_png):
    hole = rect_mask(photo.shape[:2], (50, 40, 90, 80))
    response = post(client, "/v1/remove?format=json", photo_png, {"seed": 1}, mask_png=png_bytes(hole))
    assert response.status_code == 200
    data = response.json()
    changed = decode(data["mask_png"]) > 127
    result = decode(data["variants"][0]["image_png"])
    assert changed[hole > 0].all()
    assert np.array_equal(result[~changed], photo[~changed])
    assert np.array_equal(rle.decode(data["recipe"]["edits"][0]["mask"]), hole > 0)  # the mask itself: replays anywhere


def test_outpaint(client, photo, photo_png):
    data = post(client, "/v1/outpaint?format=json", photo_png, {"aspect": "16:9", "prompt": "grass", "steps": 2,
                                                                "seed": 3}).json()
    assert (data["width"], data["height"]) == (228, 128)
    (ox, oy) = data["info"]["offset"]
    result = decode(data["variants"][0]["image_png"])
    inner = result[oy:oy + 128, ox + 20:ox + 140]  # away from the re-blended seam
    assert np.array_equal(inner, photo[:, 20:140])


def test_job_api_reports_progress_and_result(client, photo_png):
    # one window of 2 steps (with the tiny model's 64 px, refine tiles would end it on a 1-step pass)
    started = post(client, "/v1/jobs", photo_png, {"op": "replace", **EDIT, "no_refine": True})
    assert started.status_code == 202
    job = started.json()
    assert job["status"] in ("queued", "running", "done") and started.headers["x-promptpaint-job"] == job["id"]
    deadline = time.monotonic() + 60
    while job["status"] not in ("done", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.get(f"/v1/jobs/{job['id']}").json()
    assert job["status"] == "done", job
    assert job["progress"]["steps"] == 2 and job["progress"]["step"] == 2 and job["progress"]["pass"] >= 1
    assert job["result"]["variants"][0]["seed"] == 11
    assert client.get(f"/v1/jobs/{job['id']}").json()["result"] == job["result"]  # still there
    finished = client.delete(f"/v1/jobs/{job['id']}")
    assert finished.status_code == 409 and finished.json()["error"] == "JobStateError"
    assert client.get("/v1/jobs/nope").status_code == 404
    no_op = post(client, "/v1/jobs", photo_png, EDIT)
    assert no_op.status_code == 422 and "options.op must be one of" in no_op.json()["detail"]


def test_cancel_a_waiting_job(client, state, photo_png):
    release, _ = block_worker(state)
    try:
        job = post(client, "/v1/jobs", photo_png, {"op": "remove", "box": BOX}).json()
        assert job["status"] == "queued" and job["position"] == 1
        cancelled = client.delete(f"/v1/jobs/{job['id']}").json()
        assert cancelled["status"] == "cancelled"
    finally:
        release.set()
    assert client.get(f"/v1/jobs/{job['id']}").json()["error"]["error"] == "JobCancelledError"


def test_cancel_a_running_job(client, state):
    def long_work(progress):
        for step in range(1, 2001):
            progress(step, 2000)
            time.sleep(0.005)

    job = state.jobs.submit(long_work, kind="test-long")
    deadline = time.monotonic() + 10
    while job.step == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    asked = client.delete(f"/v1/jobs/{job.id}").json()
    assert asked["status"] == "running" and asked["cancel_requested"] is True
    assert type(job.future.exception(timeout=10)).__name__ == "JobCancelledError"
    assert client.get(f"/v1/jobs/{job.id}").json()["status"] == "cancelled"
    assert job.step < 2000


def test_a_request_that_went_away_does_not_stop_the_worker(client, state, photo_png):
    release, _ = block_worker(state)
    try:
        abandoned = state.jobs.submit(lambda progress: "never", kind="test-abandoned")
        assert abandoned.future.cancel()  # what asyncio does when the awaiting request task is cancelled
    finally:
        release.set()
    deadline = time.monotonic() + 10
    while abandoned.status == "queued" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert abandoned.status == "cancelled"
    assert client.get("/v1/health").status_code == 200  # the worker lives on
    # dilate 0: the tiny SAM's random mask grown by 8 px covers the photo, which a removal refuses
    assert post(client, "/v1/remove", photo_png, {"box": BOX, "seed": 1, "dilate": 0}).status_code == 200


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("path, options, fields, message", [
    ("/v1/replace", {"box": BOX}, {}, "replace needs --prompt"),
    ("/v1/replace", {**EDIT, "colour": "red"}, {}, "--colour: unknown option"),
    ("/v1/replace", {**EDIT, "box_threshold": 2}, {}, "--box-threshold"),
    ("/v1/replace", {**EDIT, "mask": "/etc/passwd"}, {}, "upload the mask image as the 'mask' file part"),
    ("/v1/replace", {**EDIT, "op": "remove"}, {}, "does not match this endpoint"),
    ("/v1/replace", {**EDIT, "variants": 2}, {}, "use ?format=json"),
    ("/v1/replace", "{not json", {}, "options field must be a JSON object"),
    ("/v1/replace", {"prompt": "x"}, {"box": BOX, "prompt": "y"}, "'prompt' is given twice"),
    ("/v1/replace", EDIT, {"mask": "/etc/hostname"}, "mask must be uploaded as a file part"),
    ("/v1/segment", {}, {}, "nothing to select"),
    ("/v1/outpaint", {"aspect": "16:9", "size": "300x200", "prompt": "x"}, {}, "exactly one of"),
    ("/v1/outpaint", {"size": "5000x5000", "prompt": "x"}, {}, "exceeds the pixel limit"),
    ("/v1/replace?format=gif", EDIT, {}, "format: Input should be 'png' or 'json'"),
])
def test_bad_requests_get_422_with_one_line(client, photo_png, path, options, fields, message):
    response = post(client, path, photo_png, options, **fields)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail


def test_bad_images_and_masks_get_422(client, photo, photo_png):
    image_id = upload(client, photo_png).json()["image_id"]
    cases = [
        (post(client, "/v1/replace", b"not an image", EDIT), "not an image"),
        (post(client, "/v1/replace", None, EDIT), "no image"),
        (post(client, "/v1/replace", photo_png, EDIT, image_id=image_id), "either an image upload or an image_id"),
        (post(client, "/v1/replace", photo_png, {"prompt": "x"}, mask_png=png_bytes(np.zeros((5, 5), np.uint8))),
         "masks are not resized"),
        (client.post("/v1/replace", content=b"x", headers={"content-type": "text/plain"}), "unsupported content type"),
        (client.post("/v1/replace", json={"image": "%%%", "options": EDIT}), "must be base64"),
        (client.post("/v1/replace", json={"image_id": image_id, "colour": 1}), "colour: unknown field"),
    ]
    for response, message in cases:
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]


def test_uploads_over_the_limits_get_413(make_settings, photo_png):
    big = png_bytes(np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8))  # ~480 kB
    app = create_app(make_settings(max_upload_mb=0.2, max_pixels=10_000, preload=False))
    with TestClient(app) as client:
        too_big = client.post("/v1/images", files={"image": ("big.png", big, "image/png")})
        assert too_big.status_code == 413 and "--max-upload-mb" in too_big.json()["detail"]

        def chunks():  # no Content-Length: the limit is counted while streaming
            for start in range(0, len(big), 65536):
                yield big[start:start + 65536]

        streamed = client.post("/v1/images", content=chunks(),
                               headers={"content-type": "multipart/form-data; boundary=x"})
        assert streamed.status_code == 413
        too_many_pixels = client.post("/v1/images", files={"image": ("p.png", photo_png, "image/png")})
        assert too_many_pixels.status_code == 413
        assert "over the limit of 10,000" in too_many_pixels.json()["detail"]


def test_token_is_required_when_set(make_settings, photo_png):
    app = create_app(make_settings(token="s3cret", preload=False))
    with TestClient(app) as client:
        assert client.get("/v1/health").status_code == 200  # liveness stays open
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            refused = client.get("/v1/models", headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        refused = client.post("/v1/images", files={"image": ("p.png", photo_png, "image/png")})
        assert refused.status_code == 401
        assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/").status_code == 200  # the page itself is public; it asks for the token


def test_only_allowed_models(client, photo_png):
    refused = post(client, "/v1/replace", photo_png, {**EDIT, "inpainter": "sdxl"})
    assert refused.status_code == 403 and "--allow-model" in refused.json()["detail"]
    path = post(client, "/v1/segment", photo_png, {"box": BOX, "segmenter": "/tmp"})
    assert path.status_code == 403  # a folder is a model name only when the server allowed it
    allowed = post(client, "/v1/remove", photo_png, {"box": BOX, "remover": "telea", "seed": 1, "dilate": 0})
    assert allowed.status_code == 200


def test_models_may_be_named_as_recipes_record_them(tiny, photo, photo_png):
    """A recipe records the id a model name resolves to (a hub id for an alias, the full folder path):
    the server that wrote it must take it back, or its results could not be replayed over HTTP."""
    models = ModelOptions(detector=str(tiny["grounding-dino"]), segmenter=f"{tiny['sam']}/../sam/",
                          inpainter=str(tiny["sd-inpaint"]), remover="telea", device="cpu")
    with TestClient(create_app(ServerSettings(models=models, preload=False))) as client:
        # dilate 0: the tiny SAM's random mask grown by 8 px covers the photo, which a removal refuses
        first = post(client, "/v1/remove?format=json", photo_png, {"box": BOX, "seed": 1, "dilate": 0}).json()
        recorded = first["recipe"]["edits"][0]["segmenter"]
        assert recorded == str(tiny["sam"].resolve()) != models.segmenter
        again = post(client, "/v1/remove?format=json", photo_png, {"box": BOX, "seed": 1, "dilate": 0,
                                                                   "segmenter": recorded})
        assert again.status_code == 200, again.json()
        assert again.json()["variants"][0]["image_png"] == first["variants"][0]["image_png"]
        assert post(client, "/v1/segment", photo_png, {"box": BOX, "segmenter": "/tmp"}).status_code == 403


def test_a_failed_job_never_takes_the_server_down(client, state, photo_png, monkeypatch):
    not_downloaded = post(client, "/v1/replace", photo_png, {**EDIT, "inpainter": "sd15"})
    assert not_downloaded.status_code == 503 and not_downloaded.json()["error"] == "ModelLoadError"

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(state.pipeline, "edit", broken)
    crashed = post(client, "/v1/replace", photo_png, EDIT)
    assert crashed.status_code == 500
    assert crashed.json() == {"detail": "internal error: RuntimeError: boom", "error": "InternalError"}
    monkeypatch.undo()
    assert client.get("/v1/health").json()["queue"]["running"] == 0
    assert post(client, "/v1/replace", photo_png, EDIT).status_code == 200


def test_queue_full_gets_503_with_retry_after(make_settings, photo_png):
    app = create_app(make_settings(queue_size=1))
    with TestClient(app) as client:
        state = client.app.state.server
        release, _ = block_worker(state)
        try:
            waiting = state.jobs.submit(lambda progress: None, kind="test-wait")  # takes the one slot
            full = post(client, "/v1/replace", photo_png, EDIT)
            assert full.status_code == 503 and full.json()["error"] == "QueueFullError"
            assert int(full.headers["retry-after"]) >= 1
            assert client.get("/v1/health").json()["queue"] == {"running": 1, "waiting": 1, "capacity": 1}
        finally:
            release.set()
        waiting.future.result(timeout=10)
        assert post(client, "/v1/replace", photo_png, EDIT).status_code == 200


def test_two_concurrent_edits_are_serialised_while_health_answers(client, photo_png):
    responses: dict[int, object] = {}

    def edit(seed: int) -> None:
        responses[seed] = post(client, "/v1/replace", photo_png, {**EDIT, "seed": seed})

    threads = [threading.Thread(target=edit, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    health = []
    while any(thread.is_alive() for thread in threads):
        started = time.perf_counter()
        answer = client.get("/v1/health")
        health.append((answer.status_code, answer.json()["queue"]["running"], time.perf_counter() - started))
        time.sleep(0.02)
    for thread in threads:
        thread.join()

    assert [responses[seed].status_code for seed in (1, 2)] == [200, 200]
    jobs = [client.get(f"/v1/jobs/{responses[seed].headers['x-promptpaint-job']}").json() for seed in (1, 2)]
    first, second = sorted(jobs, key=lambda job: job["started"])
    assert first["finished"] <= second["started"]  # one at a time
    assert all(status == 200 for status, _, _ in health)
    assert any(running == 1 for _, running, _ in health)  # answered while a job ran
    assert max(seconds for _, _, seconds in health) < 2.0


# ------------------------------------------------------------------------------------ #11: the registry, one writer, limits
def test_operations_lists_the_registry(client):
    listed = client.get("/v1/operations").json()[:3]  # the built-in ones first, then the others A-Z
    assert [op["name"] for op in listed] == ["replace", "remove", "outpaint"]
    assert [op["takes_selection"] for op in listed] == [True, True, False]
    assert [op["route"] for op in listed] == ["/v1/replace", "/v1/remove", "/v1/outpaint"]
    replace = listed[0]
    assert replace["summary"].startswith("Repaint what --find selects")
    assert {"prompt", "keep", "find", "dilate"} <= set(replace["options"]["properties"])
    assert not {"op", "mask"} & set(replace["options"]["properties"])
    assert "aspect" in listed[2]["options"]["properties"]


def test_a_new_operation_gets_its_routes(blackout_operation, make_settings, photo, photo_png):
    app = create_app(make_settings(preload=False))
    hole = rect_mask(photo.shape[:2], (40, 30, 120, 100))
    with TestClient(app) as client:
        assert "blackout" in [op["name"] for op in client.get("/v1/operations").json()]
        done = post(client, "/v1/blackout", photo_png, {"level": 3, "seed": 1}, mask_png=png_bytes(hole))
        assert done.status_code == 200, done.text
        assert (decode(done.content)[hole > 0] == 3).all()
        assert json.loads(read_png_metadata(done.content)["promptpaint"])["edits"][0]["level"] == 3
        job = post(client, "/v1/jobs", photo_png, {"op": "blackout", "level": 5}, mask_png=png_bytes(hole)).json()
        deadline = time.monotonic() + 30
        while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            job = client.get(f"/v1/jobs/{job['id']}").json()
        assert job["status"] == "done" and job["result"]["op"] == "blackout"


def test_the_icc_profile_survives_an_edit(client, photo):
    """#11: the upload's colour profile reaches the server's PNG and JSON answers (it reached only batch output)."""
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG", icc_profile=icc)
    hole = png_bytes(rect_mask(photo.shape[:2], (50, 40, 90, 80)))
    as_png = post(client, "/v1/remove", buf.getvalue(), {"seed": 1, "remover": "telea"}, mask_png=hole)
    assert as_png.status_code == 200
    assert Image.open(io.BytesIO(as_png.content)).info.get("icc_profile") == icc
    as_json = post(client, "/v1/remove?format=json", buf.getvalue(), {"seed": 1, "remover": "telea"},
                   mask_png=hole).json()
    image = Image.open(io.BytesIO(base64.b64decode(as_json["variants"][0]["image_png"])))
    assert image.info.get("icc_profile") == icc


def test_max_pixels_applies_to_outpaint_canvases(make_settings, photo_png, monkeypatch):
    """#11: serve --max-pixels is the limit for outpaint canvases too; the pipeline read only the
    environment, so a server allowed more than it could do."""
    monkeypatch.setenv("PROMPTPAINT_MAX_PIXELS", "30000")  # below the 300x128 canvas asked for below
    wide = {"expand": "0,0,140,0", "prompt": "grass", "steps": 1, "seed": 3}
    with TestClient(create_app(make_settings(max_pixels=1_000_000, preload=False))) as client:
        allowed = post(client, "/v1/outpaint?format=json", photo_png, wide)
        assert allowed.status_code == 200, allowed.text
        assert (allowed.json()["width"], allowed.json()["height"]) == (300, 128)
    monkeypatch.setenv("PROMPTPAINT_MAX_PIXELS", "100000000")
    with TestClient(create_app(make_settings(max_pixels=30_000, preload=False))) as client:
        refused = post(client, "/v1/outpaint", photo_png, wide)
        assert refused.status_code == 422 and "exceeds the pixel limit 30000" in refused.json()["detail"]


def test_detect_answers_with_the_thresholds_used(client, photo_png):
    data = post(client, "/v1/detect", photo_png, {"find": "cat", "box_threshold": 0, "text_threshold": 0}).json()
    assert (data["box_threshold"], data["text_threshold"]) == (0, 0)
    assert data["detector"] == client.app.state.server.pipeline.detector().model_id


def test_segment_and_edit_answers_record_the_detectors_default_thresholds(client, photo_png, monkeypatch):
    """#10 item 4: no threshold given -> the detector's declared defaults, in the answers too."""
    detector = client.app.state.server.pipeline.detector()
    monkeypatch.setattr(type(detector), "default_box_threshold", 0.0)  # loose enough for random weights
    monkeypatch.setattr(type(detector), "default_text_threshold", 0.0)
    seg = post(client, "/v1/segment", photo_png, {"find": "cat"}).json()
    assert (seg["box_threshold"], seg["text_threshold"], seg["detector"]) == (0.0, 0.0, detector.model_id)
    edit = post(client, "/v1/replace?format=json", photo_png, {"find": "cat", "prompt": "a dog", "steps": 1,
                                                               "seed": 2}).json()
    entry = edit["recipe"]["edits"][0]
    assert (entry["box_threshold"], entry["text_threshold"]) == (0.0, 0.0)


def test_a_box_partly_outside_the_image_is_clamped_and_the_answer_says_so(client, photo_png):
    data = post(client, "/v1/segment", photo_png, {"box": "100,80,400,300"}).json()
    assert data["clamped"] == ["--box 100,80,400,300 reaches outside the 160x128 image: clamped to 100,80,160,128"]
    refused = post(client, "/v1/segment", photo_png, {"box": "200,10,300,50"})
    assert refused.status_code == 422 and refused.json()["detail"] == "--box 200,10,300,50 lies entirely outside the 160x128 image"


# ------------------------------------------------------------------------------------ which one (#13)
@pytest.fixture(scope="module")
def owl_client(tiny):
    """OWLv2's tiny weights at box threshold 0.1 find cats in the photo and no rocket."""
    models = ModelOptions(detector=str(tiny["owlv2"]), segmenter=str(tiny["sam"]), inpainter=str(tiny["sd-inpaint"]),
                          remover="telea", device="cpu")
    with TestClient(create_app(ServerSettings(models=models, preload=False))) as test_client:
        yield test_client


def test_phrases_and_partial_finds_over_http(owl_client, cat_rgb):
    """What the page's find field sends (its text in options.find) is read like the CLI's --find."""
    image_id = upload(owl_client, png_bytes(cat_rgb)).json()["image_id"]
    found = post(owl_client, "/v1/detect", image_id=image_id, options={"find": "cat. rocket", "box_threshold": 0.1})
    assert found.status_code == 200, found.text
    cats = [d["box"] for d in found.json()["detections"]]
    assert len(cats) >= 2 and found.json()["missing"] == ["rocket"]
    strict = post(owl_client, "/v1/detect", image_id=image_id,
                  options={"find": "cat. rocket", "box_threshold": 0.1, "require": "all"})
    assert strict.status_code == 422 and strict.json()["labels"] == ["rocket"]

    seg = post(owl_client, "/v1/segment", image_id=image_id,
               options={"find": "the left cat. rocket", "box_threshold": 0.1})
    assert seg.status_code == 200, seg.text
    data = seg.json()
    assert [i["box"] for i in data["instances"]] == [min(cats, key=lambda b: b[0] + b[2])]
    assert data["read"] == [{"text": "the left cat", "label": "cat", "pick": "left"},
                            {"text": "rocket", "label": "rocket", "pick": "all"}]
    assert data["missing"] == ["rocket"]
    as_png = post(owl_client, "/v1/segment?format=png", image_id=image_id, options={"find": "cat. rocket",
                                                                                    "box_threshold": 0.1})
    assert as_png.headers["X-Promptpaint-Missing"] == '["rocket"]'

    remove = {"find": "cat. rocket", "box_threshold": 0.1, "seed": 1, "with_shadow": True}
    edited = post(owl_client, "/v1/remove?format=json", image_id=image_id, options=remove)
    assert edited.status_code == 200, edited.text
    answer = edited.json()
    assert answer["missing"] == ["rocket"] and answer["recipe"]["edits"][0]["with_shadow"] is True
    assert answer["recipe"]["edits"][0]["missing"] == ["rocket"]
    as_png = post(owl_client, "/v1/remove", image_id=image_id, options=remove)
    assert as_png.status_code == 200 and as_png.headers["X-Promptpaint-Missing"] == '["rocket"]'
    too_few = post(owl_client, "/v1/segment", image_id=image_id,
                   options={"find": f"the {len(cats) + 1}th cat from the left", "box_threshold": 0.1})
    assert too_few.status_code == 422 and too_few.json()["detail"] == (
        f"asked for the {len(cats) + 1}th cat from the left, found {len(cats)} cats")
    unread = post(owl_client, "/v1/segment", image_id=image_id, options={"find": "the largest cats"})
    assert unread.status_code == 422 and unread.json()["detail"].startswith("--find: 'the largest cats': say how many")


def test_remove_offers_shadow_and_reflection_checkboxes(client):
    """The page builds an operation's controls from its schema: booleans become checkboxes."""
    remove = next(op for op in client.get("/v1/operations").json() if op["name"] == "remove")
    properties = remove["options"]["properties"]
    for name in ("with_shadow", "with_reflection"):
        assert properties[name]["type"] == "boolean" and properties[name]["default"] is False
    assert properties["require"]["enum"] == ["any", "all"]


def test_seamless_options_over_http(client, photo, photo_png):
    """The four options are in the operations' schemas and recorded in the answer's recipe."""
    schema = client.get("/v1/operations").json()[0]["options"]["properties"]
    assert {"refine_strength", "no_refine", "no_color_match", "prefill"} <= set(schema)
    hole = png_bytes(rect_mask(photo.shape[:2], (30, 20, 130, 110)))
    options = {"prompt": "a wall", "steps": 2, "seed": 5, "prefill": "telea", "no_color_match": True,
               "refine_strength": 0.3}
    data = post(client, "/v1/replace?format=json", photo_png, options, mask_png=hole).json()
    edit = data["recipe"]["edits"][0]
    assert (edit["prefill"], edit["no_color_match"], edit["refine_strength"]) == ("telea", True, 0.3)
    bad = post(client, "/v1/replace", photo_png, {**options, "prefill": "blur"}, mask_png=hole)
    assert bad.status_code == 422 and "--prefill" in bad.json()["detail"] and "\n" not in bad.json()["detail"]


def test_a_prefill_needs_a_remover_the_server_allows(make_settings, photo_png):
    models = ModelOptions(inpainter="sd15", remover="telea", device="cpu")  # names only: nothing loads here
    with TestClient(create_app(ServerSettings(models=models, preload=False))) as plain:
        refused = post(plain, "/v1/outpaint", photo_png, {"expand": "0,0,32,0"})  # outpaint pre-fills with lama
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("prefill lama needs the remover 'lama', which is not allowed")


def test_fast_over_http_is_an_option_and_its_lora_must_be_allowed(make_settings, tiny, photo_png):
    """``fast: true`` in the options (#16); a LoRA other than the model's own needs --allow-model."""
    lora = str(tiny["lcm-lora"])
    with TestClient(create_app(make_settings(allow_models=[lora]))) as client:
        answer = post(client, "/v1/replace?format=json", photo_png, {**EDIT, "fast": True, "fast_lora": lora})
        assert answer.status_code == 200, answer.text
        recipe = answer.json()["recipe"]["edits"][0]
        assert (recipe["fast"], recipe["fast_lora"], recipe["scheduler"]) == (True, lora, "LCMScheduler")
        assert recipe["steps"] == 2  # given, as in EDIT; guidance resolved from fast mode
        assert recipe["guidance"] == 1.0
    with TestClient(create_app(make_settings())) as client:
        refused = post(client, "/v1/replace", photo_png, {**EDIT, "fast": True, "fast_lora": lora})
        assert refused.status_code == 403 and "fast_lora" in refused.json()["detail"]
