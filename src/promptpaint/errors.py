"""Typed errors. The library raises these; only the CLI maps them to exit codes and only the
server maps them to HTTP statuses, so each carries both."""

from __future__ import annotations


class PromptPaintError(Exception):
    """Base class: a problem the user can fix, described in one line."""

    exit_code = 1
    http_status = 400


class InvalidOptionError(PromptPaintError, ValueError):
    """An option or combination of options that cannot work (bad syntax, impossible size...)."""

    exit_code = 2
    http_status = 422


class ImageLoadError(PromptPaintError):
    """A missing, unreadable, truncated or oversized image."""

    exit_code = 2
    http_status = 422


class ImageTooLargeError(ImageLoadError):
    """More pixels than the configured limit (decompression-bomb guard)."""

    http_status = 413


class NothingFoundError(PromptPaintError):
    """The detector found nothing for one or more labels."""

    exit_code = 3
    http_status = 422

    def __init__(self, labels: list[str] | tuple[str, ...], message: str | None = None):
        self.labels = list(labels)
        names = ", ".join(repr(label) for label in self.labels)
        super().__init__(message or f"nothing found for {names}; lower --box-threshold or rephrase")


class ModelLoadError(PromptPaintError):
    """A model that is unknown, not downloaded, unreachable or unsafe to load. ``missing`` names the
    models that are simply not on this machine (the message says how to fetch them)."""

    exit_code = 4
    http_status = 503

    def __init__(self, message: str, missing: list[str] | tuple[str, ...] = ()):
        self.missing = list(missing)
        super().__init__(message)


class UnsupportedOperationError(PromptPaintError):
    """The chosen model cannot do the requested operation (e.g. a remover asked for a prompt)."""

    exit_code = 2
    http_status = 422


class OutputExistsError(PromptPaintError):
    """Writing the output would overwrite an input or an existing file without --overwrite."""

    exit_code = 2
    http_status = 409
