"""promptpaint as a service: a JSON/multipart HTTP API under /v1 and a web page at /.

    from promptpaint.server import ServerSettings, create_app
    app = create_app(ServerSettings(models=ModelOptions(device="cuda"), token="s3cret"))

or from a shell: ``promptpaint serve``. See docs/server.md. Importing this package is light;
FastAPI is imported when ``create_app`` is first used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from promptpaint.server.app import create_app

        return create_app
    if name == "ServerSettings":
        from promptpaint.server.settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module 'promptpaint.server' has no attribute {name!r}")
