"""The FastAPI app: the /v1 API, the web page at /, and the mapping of typed errors to HTTP.

Every route is thin: read the request (:mod:`.inputs`), build the typed options, run the
Pipeline through the job queue (:mod:`.jobs`), serialise (:mod:`.responses`).
"""

from __future__ import annotations

import json
import logging
import secrets
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from promptpaint import __version__, operations
from promptpaint.core.images import encode_image
from promptpaint.core.types import Progress
from promptpaint.errors import InvalidOptionError, NothingFoundError, PromptPaintError
from promptpaint.options import EditOptions, SegmentOptions, parse_options
from promptpaint.pipeline.recipe import missing_phrases
from promptpaint.server import responses
from promptpaint.server.errors import NotFoundError, QueueFullError, UnauthorizedError, UploadTooLargeError
from promptpaint.server.inputs import Input, read_input, read_raw, resolve_image
from promptpaint.server.settings import ServerSettings
from promptpaint.server.state import ServerState

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and option fields on top of the files
DETECT_FIELDS = ("find", "box_threshold", "text_threshold", "pick", "require", "detector")


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The whole service for ``settings``; models load at start-up (or before, see ``serve``)."""
    settings = settings or ServerSettings()
    state = ServerState(settings)
    # FastAPIOffline: FastAPI whose /docs and /redoc pages use bundled Swagger UI and ReDoc files
    # instead of a CDN, so the API docs work on machines without internet.
    app = FastAPIOffline(title="promptpaint", version=__version__, lifespan=_lifespan(state),
                         description="Edit images with words: detect, segment, replace, remove, outpaint. "
                                     "Options are those of the CLI; see docs/server.md.")
    app.state.server = state
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_upload_bytes + FORM_OVERHEAD,
                       limit_mb=settings.max_upload_mb)
    _add_error_handlers(app)
    app.include_router(_health_routes(state))
    app.include_router(_api_routes(state), dependencies=[Depends(_bearer(settings.token))])
    _add_page(app)
    return app


def _lifespan(state: ServerState):
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if state.settings.preload and not state.warm:
            await run_in_threadpool(state.warm_up)
        try:
            yield
        finally:
            state.close()

    return lifespan


# ------------------------------------------------------------------------------------ routes
def _health_routes(state: ServerState) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["service"])

    @router.get("/health", summary="Liveness and queue state (no token needed); 503 if the worker stopped")
    def health() -> JSONResponse:
        data = state.health_json()
        return JSONResponse(data, status_code=200 if data["status"] == "ok" else 503)

    return router


def _api_routes(state: ServerState) -> APIRouter:
    router = APIRouter(prefix="/v1")
    pipe = state.pipeline

    @router.get("/models", tags=["service"], summary="The loaded models and those requests may name")
    def models() -> dict[str, Any]:
        return state.models_json()

    @router.get("/operations", tags=["service"],
                summary="The edit operations: name, summary, whether they take a selection, their options")
    def list_operations() -> list[dict[str, Any]]:
        return [responses.operation_json(op) for op in operations.all_operations()]

    @router.post("/images", tags=["images"], summary="Upload an image once; refer to it later by image_id",
                 openapi_extra=_body(None, mask=False))
    async def upload_image(request: Request) -> dict[str, Any]:
        raw = await read_raw(request)
        if raw.options or raw.mask_bytes is not None:
            raise InvalidOptionError("POST /v1/images takes only an image")
        image, image_id = await resolve_image(raw, state)
        return {"image_id": image_id, "width": image.size[0], "height": image.size[1],
                "has_alpha": image.has_alpha, "format": image.format}

    @router.get("/images/{image_id}", tags=["images"], summary="An uploaded image as the server decoded it (PNG)",
                responses={200: {"content": {"image/png": {}}}})
    async def get_image(image_id: str) -> Response:
        image = state.images.get(image_id)
        png = await run_in_threadpool(encode_image, image.rgb, image.alpha)
        return Response(png, media_type="image/png")

    @router.post("/detect", tags=["select"], summary="Boxes, labels and scores for what `find` names",
                 openapi_extra=_body(SegmentOptions, mask=False, fields=DETECT_FIELDS))
    async def detect(request: Request) -> JSONResponse:
        inp = await read_input(request, state)
        unknown = sorted(set(inp.options) - set(DETECT_FIELDS))
        if unknown:
            raise InvalidOptionError(f"--{unknown[0].replace('_', '-')}: not an option of detect")
        opts = parse_options(SegmentOptions, inp.options)
        job = state.jobs.submit(lambda progress: pipe.detect(
            inp.image, opts.find, box_threshold=opts.box_threshold, text_threshold=opts.text_threshold,
            detector=opts.detector, pick=opts.pick, require=opts.require), kind="detect")
        dets = await job.wait()
        job.take_result()
        return JSONResponse(responses.detect_json(dets, inp.image_id), headers=_headers(job, inp))

    @router.post("/segment", tags=["select"], summary="The mask of what `find` names, minus `exclude`",
                 openapi_extra=_body(SegmentOptions, mask=True),
                 responses={200: {"content": {"application/json": {}, "image/png": {}}}})
    async def segment(request: Request, response_format: Literal["json", "png"] = Query("json", alias="format"),
                      overlay: bool = Query(False, description="add overlay_png (boxes and tinted mask)")):
        inp = await read_input(request, state)
        opts = parse_options(SegmentOptions, inp.options)
        job = state.jobs.submit(lambda progress: pipe.segment(inp.image, opts, mask=inp.mask), kind="segment")
        seg = await job.wait()
        job.take_result()
        if response_format == "png":
            png = await run_in_threadpool(responses.mask_png, seg.mask)
            return Response(png, media_type="image/png",
                            headers={**_headers(job, inp), **_missing_header(seg.info.get("missing", []))})
        data = await run_in_threadpool(responses.segment_json, seg, inp.image, inp.image_id, overlay)
        return JSONResponse(data, headers=_headers(job, inp))

    for operation in operations.all_operations():
        router.add_api_route(
            f"/{operation.name}", _edit_endpoint(state, operation.name), methods=["POST"], tags=["edit"],
            summary=operation.summary(), openapi_extra=_body(operation.options, mask=operation.takes_selection),
            responses={200: {"content": {"image/png": {}, "application/json": {}},
                             "description": "PNG by default; ?format=json for base64 images and the recipe"}})

    ops = ", ".join(operations.names())

    @router.post("/jobs", tags=["jobs"], status_code=202,
                 summary=f"Start an edit (options.op: {ops}); poll GET /v1/jobs/{{id}}",
                 openapi_extra=_body(None, mask=True,
                                     options_note=f"the options of POST /v1/<op> plus op: which one ({ops})"))
    async def start_job(request: Request, previews: int = Query(
            0, ge=0, le=1000, description="also a live preview every this many denoising steps (0: none), "
                                          "served at GET /v1/jobs/{id}/preview while the job runs")) -> JSONResponse:
        inp = await read_input(request, state)
        edit = _edit_options(state, inp.options.get("op"), inp)
        job = state.jobs.submit(partial(_run_edit, state, inp, edit, previews=previews), kind=edit.op,
                                present=partial(_present_edit, inp))
        return JSONResponse(job.to_json(state.jobs.position(job)), status_code=202, headers=_headers(job, inp))

    @router.get("/jobs/{job_id}", tags=["jobs"], summary="A job's status, progress (step i of n) and result")
    async def get_job(job_id: str) -> dict[str, Any]:
        job = state.jobs.get(job_id)
        data = job.to_json(state.jobs.position(job))
        job.ended_seen()
        if job.payload is None and job.result is not None and job.present is not None:
            job.payload = await run_in_threadpool(job.present, job.result)
            job.result = None
        data["result"] = job.payload
        return data

    @router.get("/jobs/{job_id}/preview", tags=["jobs"], responses={200: {"content": {"image/png": {}}}},
                summary="The latest live preview of a running edit (PNG of the window being generated)")
    async def get_preview(job_id: str) -> Response:
        job = state.jobs.get(job_id)
        preview, version = job.preview, job.previews
        if preview is None:
            raise NotFoundError(f"job {job_id} has no live preview now (ask for one with ?previews=N)")
        png = await run_in_threadpool(encode_image, preview)
        return Response(png, media_type="image/png", headers={"X-Promptpaint-Preview-Version": str(version),
                                                                "Cache-Control": "no-store"})

    @router.delete("/jobs/{job_id}", tags=["jobs"], summary="Cancel a waiting job, or stop a running one")
    def cancel_job(job_id: str) -> dict[str, Any]:
        job = state.jobs.cancel(job_id)
        return job.to_json(state.jobs.position(job))

    return router


def _edit_endpoint(state: ServerState, op: str):
    async def edit(request: Request,
                   response_format: Literal["png", "json"] = Query("png", alias="format")) -> Response:
        return await _run_edit_request(state, op, request, response_format)

    edit.__name__ = op
    return edit


async def _run_edit_request(state: ServerState, op: str, request: Request, response_format: str) -> Response:
    """POST /v1/<op>: run the edit, answer when it is done."""
    inp = await read_input(request, state)
    edit = _edit_options(state, op, inp)
    if response_format == "png" and edit.variants > 1:
        raise InvalidOptionError("a PNG response holds one image; use ?format=json for --variants > 1")
    job = state.jobs.submit(partial(_run_edit, state, inp, edit), kind=op)
    result = await job.wait()
    job.take_result()
    headers = {**_headers(job, inp), "X-Promptpaint-Seed": str(result.recipe.get("seed")),
               **_missing_header(missing_phrases(result.recipe))}
    if response_format == "png":
        png = await run_in_threadpool(responses.edit_png, result)
        return Response(png, media_type="image/png", headers=headers)
    data = await run_in_threadpool(responses.edit_json, result, inp.image_id)
    return JSONResponse(data, headers=headers)


def _edit_options(state: ServerState, op: str | None, inp: Input) -> EditOptions:
    """The typed edit for ``op``, checked against the image and the limits before it is queued."""
    values = dict(inp.options)
    operation = operations.get(op, where="options.")
    if values.setdefault("op", op) != op:
        raise InvalidOptionError(f"op {values['op']!r} does not match this endpoint ({op})")
    if inp.mask is not None and not operation.takes_selection:
        raise InvalidOptionError(f"{op} takes no mask: it selects nothing")
    edit = operation.parse(values, mask_given=inp.mask is not None)
    state.pipeline.check(edit, inp.image)
    state.check_prefill(operation, edit, inp.mask is not None)
    return edit


def _run_edit(state: ServerState, inp: Input, edit, progress: Progress, previews: int = 0):
    return state.pipeline.edit(inp.image, edit, mask=inp.mask, progress=progress, previews=previews)


def _present_edit(inp: Input, result) -> dict[str, Any]:
    return responses.edit_json(result, inp.image_id)


def _headers(job, inp: Input) -> dict[str, str]:
    return {"X-Promptpaint-Job": job.id, "X-Promptpaint-Image-Id": inp.image_id}


def _missing_header(missing: list[str]) -> dict[str, str]:
    """A PNG answer's note of the phrases that found nothing (a JSON list; the JSON answers say
    ``"missing"``). ASCII-escaped: headers are Latin-1."""
    return {"X-Promptpaint-Missing": json.dumps(missing)} if missing else {}


# ------------------------------------------------------------------------------------ the page
def _add_page(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


# ------------------------------------------------------------------------------------ safety
def _bearer(token: str | None):
    """A dependency: with a token set, every call must send ``Authorization: Bearer <token>``."""
    expected = token.encode() if token else None

    async def check(request: Request) -> None:
        if expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), expected):
            raise UnauthorizedError("missing or wrong token: send the header 'Authorization: Bearer <token>'")

    return check


class BodyLimitMiddleware:
    """Refuse request bodies over the limit: at once from Content-Length, else while streaming."""

    def __init__(self, app, limit: int, limit_mb: float):
        self.app = app
        self.limit = limit
        self.message = f"request body over the upload limit of {limit_mb:g} MiB (--max-upload-mb)"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _error_response(UploadTooLargeError(self.message))(scope, receive, send)
            return
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise UploadTooLargeError(self.message)  # surfaces in the route, mapped to 413
            return message

        await self.app(scope, limited_receive, send)


# ------------------------------------------------------------------------------------ errors
def _error_response(error: PromptPaintError) -> JSONResponse:
    body: dict[str, Any] = {"detail": str(error), "error": type(error).__name__}
    headers = {}
    if isinstance(error, NothingFoundError):
        body["labels"] = error.labels
    if isinstance(error, QueueFullError):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, UnauthorizedError):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=error.http_status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PromptPaintError)
    async def typed_error(request: Request, error: PromptPaintError) -> JSONResponse:
        return _error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = ["{}: {}".format(".".join(str(p) for p in item["loc"][1:]) or item["loc"][0], item["msg"])
                    for item in error.errors()]
        return _error_response(InvalidOptionError("; ".join(problems)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error: {type(error).__name__}", "error": "InternalError"},
                            status_code=500)


# ------------------------------------------------------------------------------------ OpenAPI
def _body(model, *, mask: bool, fields: tuple[str, ...] | None = None, options_note: str = "") -> dict[str, Any]:
    """The request body in /docs: the option model's own JSON schema, in both request shapes."""
    props: dict[str, Any] = {
        "image": {"type": "string", "format": "binary", "description": "the photo (PNG, JPEG, WebP, TIFF)"},
        "image_id": {"type": "string", "description": "instead of image: an id from POST /v1/images"},
    }
    if mask:
        props["mask"] = {"type": "string", "format": "binary",
                         "description": "a mask image of the photo's size (white = selected)"}
    if model is not None:
        schema = model.model_json_schema()
        schema["properties"].pop("mask", None)  # masks come only as uploads
        if fields:
            schema["properties"] = {k: v for k, v in schema["properties"].items() if k in fields}
        if issubclass(model, EditOptions):
            schema["properties"].pop("op", None)
        props["options"] = schema
    elif options_note:
        props["options"] = {"type": "object", "description": options_note}
    json_props = {**props, "image": {"type": "string", "format": "byte", "description": "base64 image file"}}
    if mask:
        json_props["mask"] = {"type": "string", "format": "byte", "description": "base64 mask image"}
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": props},
                                "encoding": {"options": {"contentType": "application/json"}}},
        "application/json": {"schema": {"type": "object", "properties": json_props}},
    }}}


__all__ = ["create_app", "ServerSettings"]
