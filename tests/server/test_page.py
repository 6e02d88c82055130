"""The page in a real browser: `promptpaint serve` as a subprocess with the tiny models, driven by
Debian's Chromium through Playwright. Upload a photo, get a mask preview, brush part of it away,
run an edit, and check the result appears (and the brushed-out pixels came back untouched).

Needs /usr/bin/chromium (`apt-get install -y chromium`); Playwright's own browser download is
not used. Screenshots go to artifacts/ (browser-mask.png: the preview; browser-edit.png: the result).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
SCREENSHOT = ARTIFACTS / "browser-edit.png"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 120

if not CHROMIUM.exists():
    pytest.skip("Debian's Chromium is not installed (/usr/bin/chromium missing): "
                "apt-get update && apt-get install -y chromium", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_health(url: str, process: subprocess.Popen, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"promptpaint serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"promptpaint serve did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(tiny, tmp_path_factory):
    """The real command on a free loopback port; stopped (SIGTERM, then SIGKILL) afterwards."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "PROMPTPAINT_TOKEN"}
    env.update(HF_HUB_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    command = [sys.executable, "-m", "promptpaint", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--detector", str(tiny["grounding-dino"]), "--segmenter", str(tiny["sam"]),
               "--inpainter", str(tiny["sd-inpaint"]), "--remover", str(tiny["lama"]), "--device", "cpu"]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture()
def page():
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 800})
        finally:
            browser.close()


# Count selected (tinted) pixels, and read one pixel of the result and of the photo.
COUNT_TINTED = """() => { const c = document.getElementById('tint');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
PIXELS_AT = """([x, y]) => { const read = (source) => { const c = document.createElement('canvas');
  c.width = source.naturalWidth || source.width; c.height = source.naturalHeight || source.height;
  const ctx = c.getContext('2d'); ctx.drawImage(source, 0, 0); return [...ctx.getImageData(x, y, 1, 1).data]; };
  return [read(document.getElementById('after')), read(document.getElementById('photo'))]; }"""


def test_upload_mask_brush_edit_and_result(server, page, cat_png):
    expect = playwright.expect
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)

    page.goto(server)
    expect(page.locator("#models")).to_contain_text("detector")
    page.set_input_files("#file", str(cat_png))
    expect(page.locator("#image-meta")).to_contain_text("451×300")

    # Mask preview: the tiny detector needs thresholds of 0 to name anything.
    page.fill("#box-threshold", "0")
    page.fill("#text-threshold", "0")
    page.fill("#find", "cat")
    page.click("#segment-btn")
    expect(page.locator("#status")).to_contain_text("instance(s)", timeout=30_000)
    assert page.evaluate(COUNT_TINTED) > 0

    # Erase a thick horizontal stroke through the middle (the tiny SAM selects most of the photo).
    page.click("#brush-mode [data-brush=erase]")
    page.fill("#brush-size", "70")
    box = page.locator("#boxes").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, y, steps=8)
    page.mouse.up()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser-mask.png"))

    page.fill("#prompt", "a small dog")
    page.fill("#seed", "7")
    page.fill("#steps", "2")
    page.click("#run")
    page.wait_for_function("() => !document.getElementById('view-result').hidden"
                           " || document.getElementById('status').classList.contains('error')", timeout=90_000)
    assert "error" not in page.get_attribute("#status", "class"), page.text_content("#status")
    page.wait_for_function("() => document.getElementById('after').naturalWidth > 0")
    size = page.evaluate("() => [document.getElementById('after').naturalWidth, "
                         "document.getElementById('after').naturalHeight]")
    assert size == [451, 300]
    expect(page.locator("#status")).to_contain_text("seed 7")
    after, before = page.evaluate(PIXELS_AT, [225, 150])  # centre of the erased stroke: untouched
    assert after == before
    assert page.get_attribute("#dl-result", "href").startswith("data:image/png;base64,")
    assert page.get_attribute("#dl-recipe", "download").endswith(".recipe.json")

    page.screenshot(path=str(SCREENSHOT))
    assert not problems, problems


def test_api_docs_render_without_internet(server, page):
    """The machine has no internet: Swagger UI must come from the server itself."""
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith(server) and not request.url.startswith("data:") else None)
    page.goto(f"{server}/docs")
    playwright.expect(page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible(timeout=20_000)
    assert page.locator(".swagger-ui .opblock").count() >= 10  # the /v1 operations are listed
    assert outside == []
