"""``promptpaint serve``: the HTTP API and the web page from one process.

Only click and promptpaint's light modules are imported here; FastAPI, uvicorn and the models
are imported inside the command, so ``promptpaint --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

import click

from promptpaint.cli.options import given, options_from
from promptpaint.options import ModelOptions


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; anything but loopback exposes the server to the network")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(0, 65535), help="TCP port")
@click.option("--token", envvar="PROMPTPAINT_TOKEN", metavar="T",
              help="require 'Authorization: Bearer T' on every /v1 call but health [env: PROMPTPAINT_TOKEN]")
@options_from(ModelOptions)
@click.option("--allow-model", "allow_models", multiple=True, metavar="NAME",
              help="a model requests may name besides the loaded ones (repeatable); loaded on first use")
@click.option("--max-upload-mb", default=20.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="largest request body in MiB (413 above)")
@click.option("--max-pixels", type=click.IntRange(min=1), metavar="N",
              help="largest image or outpaint canvas in pixels (413/422 above) [default: $PROMPTPAINT_MAX_PIXELS "
                   "or 64,000,000]")
@click.option("--queue-size", default=8, show_default=True, type=click.IntRange(min=0),
              help="jobs that may wait behind the running one; more get 503 with Retry-After")
def serve(host: str, port: int, token: str | None, allow_models: tuple[str, ...], max_upload_mb: float,
          max_pixels: int | None, queue_size: int, **values: Any) -> None:
    """Serve the HTTP API (/v1, docs at /docs) and the web page (/) with the models kept warm."""
    from promptpaint import __version__
    from promptpaint.options import parse_options
    from promptpaint.server.settings import ServerSettings

    models = parse_options(ModelOptions, given(values, ModelOptions))
    settings = parse_options(ServerSettings, {
        "models": models, "host": host, "port": port, "token": token or None, "allow_models": list(allow_models),
        "max_upload_mb": max_upload_mb, "max_pixels": max_pixels, "queue_size": queue_size})
    if not settings.is_local_only and not settings.token:
        click.echo(f"warning: listening on {host} without --token: anyone who can reach this port can run jobs",
                   err=True)
    import uvicorn

    from promptpaint.server.app import create_app

    app = create_app(settings)
    click.echo("loading models: " + ", ".join(f"{k}={v}" for k, v in app.state.server.loaded.items()), err=True)
    app.state.server.warm_up()  # a model that cannot load stops here, with its one-line error
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"promptpaint {__version__} serving on http://{shown}:{port}/ (API docs at /docs)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5)
