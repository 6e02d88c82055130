"""Errors only the server raises. They extend the library's typed errors, so one handler maps
every error to its ``http_status`` and a one-line ``detail``."""

from __future__ import annotations

from promptpaint.errors import ImageTooLargeError, InvalidOptionError, PromptPaintError


class UploadTooLargeError(ImageTooLargeError):
    """The request body is over ``--max-upload-mb``."""

    http_status = 413


class UnauthorizedError(PromptPaintError):
    """A token is set and the request does not carry it."""

    http_status = 401


class ModelNotAllowedError(InvalidOptionError):
    """A request asked for a model the server was not started to allow."""

    http_status = 403


class NotFoundError(PromptPaintError):
    """An unknown or expired image_id or job id."""

    http_status = 404


class JobStateError(PromptPaintError):
    """The job cannot do that in its current state (e.g. cancel a finished job)."""

    http_status = 409


class JobCancelledError(PromptPaintError):
    """The job was cancelled before it finished."""

    http_status = 409


class QueueFullError(PromptPaintError):
    """Every waiting slot is taken; the client should come back after ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class InternalError(PromptPaintError):
    """An unexpected failure inside a job: reported, logged, and the server keeps serving."""

    http_status = 500


class OutOfMemoryError(InternalError):
    """The device ran out of memory during a job; a smaller request may fit."""

    http_status = 503
