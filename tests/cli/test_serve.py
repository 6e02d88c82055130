"""The `serve` command's wiring (flags to settings, models warmed) and its light --help."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


# ------------------------------------------------------------------------------------ the command
def test_serve_command_wiring(tiny, monkeypatch):
    from click.testing import CliRunner

    import uvicorn

    from promptpaint.cli.app import main

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: started.update(app=app, **kwargs))
    args = ["serve", "--detector", str(tiny["grounding-dino"]), "--segmenter", str(tiny["sam"]),
            "--inpainter", str(tiny["sd-inpaint"]), "--remover", str(tiny["lama"]),
            "--matting", str(tiny["vitmatte"]), "--device", "cpu", "--allow-model", "telea", "--queue-size", "3", "--max-upload-mb", "5"]
    result = CliRunner().invoke(main, args, env={"PROMPTPAINT_TOKEN": "from-env"})
    assert result.exit_code == 0, result.output
    state = started["app"].state.server
    try:
        assert (started["host"], started["port"]) == ("127.0.0.1", 7860)  # loopback unless told otherwise
        assert state.warm and state.settings.token == "from-env"
        assert state.settings.queue_size == 3 and state.settings.max_upload_bytes == 5 * 1024 * 1024
        assert "telea" in state.allowed["remover"]
    finally:
        state.close()
    bad = CliRunner().invoke(main, ["serve", "--allow-model", "no-such-model"])
    assert bad.exit_code == 2 and "error: unknown allowed model 'no-such-model'" in bad.output  # a typo: exit 2


def test_cli_help_imports_no_server_stack():
    code = ("import sys; from click.testing import CliRunner; from promptpaint.cli.app import main; "
            "assert CliRunner().invoke(main, ['serve', '--help']).exit_code == 0; "
            "print([m for m in ('fastapi', 'uvicorn', 'starlette', 'torch') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_serve_names_every_missing_model_at_once(tiny, tmp_path, monkeypatch):
    """#15: a server whose models are not here says so in one line, all of them, before loading any;
    matting, which only cut-outs need, comes with the way to start without it."""
    from click.testing import CliRunner

    from promptpaint.cli.app import main

    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = ["serve", "--segmenter", str(tiny["sam"]), "--inpainter", str(tiny["sd-inpaint"]),
            "--remover", str(tiny["lama"]), "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 4
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "detector gdino-tiny" in error[0] and "matting vitmatte" in error[0]
    assert "`promptpaint models fetch gdino-tiny vitmatte`" in error[0] and "--matting none" in error[0]
