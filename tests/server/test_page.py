"""The web page in a real browser: `promptpaint serve` as a subprocess with the tiny models, driven by
Debian's Chromium through Playwright, one test per thing the editor promises (issue #14): click to
select, undo and redo, zoom and pan, the instance picker, compare, history, shortcuts, touch, progress
and cancel, and New background sending what the user chose. Every test also checks that no request
leaves the server (the page must work offline).

Needs /usr/bin/chromium (`apt-get install -y chromium`); Playwright's own browser download is not
used. Screenshots of each step go to artifacts/; with PROMPTPAINT_SCREENSHOTS=docs/img they go to the
docs instead (as docs/img/editor-*.png, shown in docs/server.md).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS_FOR_DOCS = os.environ.get("PROMPTPAINT_SCREENSHOTS")
SHOTS = Path(SHOTS_FOR_DOCS or ROOT / "artifacts")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 120
SETTLE_MS = 30_000
WIDTH, HEIGHT = 451, 300  # the cat photo

if not CHROMIUM.exists():
    pytest.skip("Debian's Chromium is not installed (/usr/bin/chromium missing): "
                "apt-get update && apt-get install -y chromium", allow_module_level=True)
playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect


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
               "--inpainter", str(tiny["sd-inpaint"]), "--remover", str(tiny["lama"]),
               "--matting", str(tiny["vitmatte"]), "--device", "cpu"]
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


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory, cat_rgb) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "cat.png"
    Image.fromarray(cat_rgb).save(path)
    return path


class Editor:
    """One browser tab on the page, with what the tests read from it and what it asked the server."""

    def __init__(self, page, server: str):
        self.page, self.server = page, server
        self.outside: list[str] = []
        self.problems: list[str] = []
        self.sent: list[tuple[str, dict]] = []  # (path, options) of every request with an options field
        page.on("request", self._request)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", lambda msg: self.problems.append(f"console: {msg.text}") if msg.type == "error" else None)

    def _request(self, request) -> None:
        if not request.url.startswith((self.server, "data:", "blob:")):
            self.outside.append(request.url)
        body = request.post_data_buffer
        if body and b'name="options"' in body:
            match = re.search(rb'name="options"\r\n(?:[^\r\n]*\r\n)*\r\n(.*?)\r\n--', body, re.S)
            self.sent.append((request.url.removeprefix(self.server), json.loads(match.group(1))))

    def by(self, test_id: str):
        return self.page.get_by_test_id(test_id)

    def open(self, photo: Path) -> None:
        self.page.goto(self.server)
        expect(self.by("op-replace")).to_be_visible(timeout=20_000)
        self.by("photo-input").set_input_files(str(photo))
        expect(self.by("photo-meta")).to_contain_text(f"{WIDTH}×{HEIGHT}")
        self.settle()

    def settle(self) -> int:
        """The selected pixels once the page shows the latest selection."""
        area = self.by("selection-area")
        expect(area).to_have_attribute("data-state", "ready", timeout=SETTLE_MS)
        return int(area.text_content())

    def screen(self, x: float, y: float) -> tuple[float, float]:
        """Where image pixel (x, y)'s centre is on the screen, from the photo canvas's place."""
        box = self.by("canvas").bounding_box()
        return box["x"] + (x + 0.5) * box["width"] / WIDTH, box["y"] + (y + 0.5) * box["height"] / HEIGHT

    def click_pixel(self, x: int, y: int, shift: bool = False) -> int:
        sx, sy = self.screen(x, y)
        if shift:
            self.page.keyboard.down("Shift")
        self.page.mouse.click(sx, sy)
        if shift:
            self.page.keyboard.up("Shift")
        return self.settle()

    def find(self, text: str) -> int:
        """Select by words; the tiny detector needs thresholds of 0 to name anything."""
        self.by("box-threshold").fill("0")
        self.by("text-threshold").fill("0")
        self.by("find-input").fill(text)
        self.by("find-button").click()
        return self.settle()

    def job_options(self) -> dict:
        """The options of the last edit the page started (POST /v1/jobs, with or without ?previews=N)."""
        return [options for path, options in self.sent if path.split("?")[0] == "/v1/jobs"][-1]

    def points_sent(self) -> list:
        return [options.get("point", []) for path, options in self.sent if path.startswith("/v1/segment")][-1]

    def run_edit(self, prompt: str = "a small dog", seed: int = 7, steps: int = 2) -> None:
        if prompt:
            self.by("prompt-input").fill(prompt)
        self.by("seed-input").fill(str(seed))
        self.by("steps-input").fill(str(steps))
        self.by("run").click()
        self.page.wait_for_function("() => !document.getElementById('view-result').hidden"
                                    " || document.getElementById('status').classList.contains('error')",
                                    timeout=90_000)
        assert "error" not in self.by("status").get_attribute("class"), self.by("status").text_content()
        self.page.wait_for_function("() => document.getElementById('after').naturalWidth > 0")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"editor-{name}.png"
        self.page.screenshot(path=str(path))
        if SHOTS_FOR_DOCS:  # 256 colours: a quarter of the bytes in the repository, still sharp
            from PIL import Image

            with Image.open(path) as image:
                small = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
            small.save(path, optimize=True)

    def check_clean(self) -> None:
        assert self.outside == [], f"requests left the server: {self.outside}"
        assert not self.problems, self.problems


@pytest.fixture()
def editor(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = Editor(context.new_page(), server)
    try:
        yield page
        page.check_clean()
    finally:
        context.close()


# ---------------------------------------------------------------------------- selection
def test_click_adds_a_point_and_shift_click_a_negative_one(editor, photo):
    editor.open(photo)
    assert editor.settle() == 0
    first = editor.click_pixel(100, 80)
    assert first > 0
    assert editor.points_sent() == [[100, 80, 1]]
    editor.shot("1-click")
    second = editor.click_pixel(300, 200, shift=True)
    assert second != first
    assert editor.points_sent() == [[100, 80, 1], [300, 200, 0]]

    # The touch toggle does what Shift does.
    editor.by("point-negative").click()
    editor.click_pixel(50, 250)
    assert editor.points_sent()[-1] == [50, 250, 0]


def test_undo_and_redo_step_through_exact_earlier_values(editor, photo):
    editor.open(photo)
    editor.by("box-threshold").fill("0")
    editor.by("text-threshold").fill("0")
    values = [editor.settle()]
    values.append(editor.click_pixel(100, 80))
    values.append(editor.click_pixel(300, 200, shift=True))
    # A brush stroke adds to the selection.
    editor.by("tool-brush").click()
    editor.by("brush-size").fill("60")
    x0, y = editor.screen(20, 280)
    x1, _ = editor.screen(400, 280)
    editor.page.mouse.move(x0, y)
    editor.page.mouse.down()
    editor.page.mouse.move(x1, y, steps=6)
    editor.page.mouse.up()
    values.append(editor.settle())
    editor.by("tool-point").click()
    editor.by("find-input").fill("cat")
    editor.by("find-input").press("Enter")
    values.append(editor.settle())
    # A slider change is one step too (recorded when it is released).
    editor.by("box-threshold").fill("0.5")
    values.append(editor.settle())
    assert len(set(values)) == len(values), values  # every step changed the selection
    editor.shot("2-undo")

    editor.page.locator("body").click(position={"x": 5, "y": 5})  # keys go to the page, not the Find box
    for expected in reversed(values[:-1]):
        editor.page.keyboard.press("Control+z")
        assert editor.settle() == expected
    editor.page.keyboard.press("Control+z")  # back past the thresholds, to the untouched start
    editor.page.keyboard.press("Control+z")
    assert editor.settle() == values[0]
    expect(editor.by("undo")).to_be_disabled()
    editor.page.keyboard.press("Control+Shift+z")
    editor.page.keyboard.press("Control+Shift+z")
    for expected in values[1:]:
        editor.page.keyboard.press("Control+Shift+z")
        assert editor.settle() == expected
    expect(editor.by("redo")).to_be_disabled()
    # The buttons do the same.
    editor.by("undo").click()
    assert editor.settle() == values[-2]
    editor.by("redo").click()
    assert editor.settle() == values[-1]


def test_wheel_zooms_and_points_land_on_the_same_pixel_at_any_zoom(editor, photo):
    editor.open(photo)
    level = editor.by("zoom-level")
    fitted = level.text_content()
    cx, cy = editor.screen(225, 150)
    editor.page.mouse.move(cx, cy)
    editor.page.mouse.wheel(0, -400)
    expect(level).not_to_have_text(fitted)

    editor.by("zoom-level").click()  # 100%
    expect(level).to_have_text("100%")
    editor.click_pixel(123, 77)
    at_100 = editor.points_sent()[-1]
    editor.by("zoom-in").click()
    editor.by("zoom-in").click()
    expect(level).to_have_text("200%")
    editor.page.keyboard.press("Control+z")
    editor.settle()
    editor.click_pixel(123, 77)
    assert editor.points_sent()[-1] == at_100 == [123, 77, 1]

    # The brush covers the pixels under it at 200% too: a dot of 20 px around (200, 150).
    editor.by("tool-brush").click()
    editor.by("brush-size").fill("20")
    editor.page.keyboard.press("Control+z")
    editor.settle()
    sx, sy = editor.screen(200, 150)
    editor.page.mouse.click(sx, sy)
    editor.settle()
    alpha = editor.page.evaluate("""([x, y]) => { const c = document.getElementById('tint');
        return [[x, y], [x + 8, y], [x + 12, y], [x, y - 12]].map(([u, v]) =>
          c.getContext('2d').getImageData(u, v, 1, 1).data[3]); }""", [200, 150])
    assert alpha[0] > 0 and alpha[1] > 0 and alpha[2] == 0 and alpha[3] == 0, alpha
    editor.shot("3-zoom")

    # Space+drag pans; Esc fits again.
    before = editor.by("canvas").bounding_box()
    editor.page.mouse.move(sx, sy)
    editor.page.keyboard.down(" ")
    editor.page.mouse.down()
    editor.page.mouse.move(sx - 120, sy - 40, steps=4)
    editor.page.mouse.up()
    editor.page.keyboard.up(" ")
    after = editor.by("canvas").bounding_box()
    assert (round(after["x"] - before["x"]), round(after["y"] - before["y"])) == (-120, -40)
    editor.page.keyboard.press("Escape")
    expect(level).to_have_text(fitted)


def test_instance_toggle_changes_the_area_by_that_instances_pixels(editor, photo, server):
    import httpx

    from promptpaint.core import rle

    editor.open(photo)
    total = editor.find("cat")
    answer = httpx.post(f"{server}/v1/segment", data={"options": json.dumps(
        {"find": "cat", "box_threshold": 0, "text_threshold": 0})}, files={"image": photo.read_bytes()}).json()
    masks = np.stack([rle.decode(item["rle"]) for item in answer["instances"]])
    assert total == int(masks.any(axis=0).sum())
    expect(editor.page.locator("[data-testid^=instance-]")).to_have_count(len(masks))
    # The instance whose removal changes the selection most: its pixels no other instance covers.
    own = [int((masks[i] & ~np.delete(masks, i, axis=0).any(axis=0)).sum()) for i in range(len(masks))]
    k = int(np.argmax(own))
    assert own[k] > 0

    editor.by(f"instance-{k}").click()
    assert editor.settle() == total - own[k]
    expect(editor.by(f"instance-{k}")).to_have_attribute("aria-pressed", "false")
    editor.shot("4-instances")
    editor.by(f"instance-{k}").click()
    assert editor.settle() == total

    # Its label on the photo toggles it too.
    x0, y0 = answer["instances"][k]["box"][:2]
    sx, sy = editor.screen(x0, y0)
    top = editor.by("viewport").bounding_box()["y"]
    editor.page.mouse.click(sx + 6, top + max(sy - top - 18, 0) + 9)  # on its label, above the box's corner
    assert editor.settle() == total - own[k]


# ---------------------------------------------------------------------------- edits, compare, history
def test_brushed_edit_keeps_erased_pixels_and_compare_shows_the_original(editor, photo):
    editor.open(photo)
    editor.find("cat")
    # Erase a thick horizontal stroke through the middle (the tiny SAM selects most of the photo).
    editor.by("tool-erase").click()
    editor.by("brush-size").fill("60")
    x0, y = editor.screen(90, 150)
    x1, _ = editor.screen(360, 150)
    editor.page.mouse.move(x0, y)
    editor.page.mouse.down()
    editor.page.mouse.move(x1, y, steps=8)
    editor.page.mouse.up()
    editor.settle()
    editor.shot("5-brush")
    editor.run_edit()
    size = editor.page.evaluate("() => [document.getElementById('after').naturalWidth, "
                                "document.getElementById('after').naturalHeight]")
    assert size == [WIDTH, HEIGHT]
    expect(editor.by("status")).to_contain_text("seed 7")
    after, before = editor.page.evaluate("""([x, y]) => { const read = (source) => {
        const c = document.createElement('canvas'); c.width = source.naturalWidth || source.width;
        c.height = source.naturalHeight || source.height; const ctx = c.getContext('2d');
        ctx.drawImage(source, 0, 0); return [...ctx.getImageData(x, y, 1, 1).data]; };
        return [read(document.getElementById('after')), read(document.getElementById('photo'))]; }""", [225, 150])
    assert after == before  # the centre of the erased stroke came back untouched
    assert editor.by("download-result").get_attribute("href").startswith("blob:")
    assert editor.by("download-recipe").get_attribute("download").endswith(".recipe.json")
    editor.shot("6-result")

    # Hold O: the original over the whole picture; release: the split is back where it was.
    editor.by("split").fill("30")
    clip = "() => getComputedStyle(document.getElementById('before-layer')).clipPath"
    split_clip = editor.page.evaluate(clip)
    editor.page.keyboard.down("o")
    assert editor.page.evaluate(clip) == "none"
    editor.shot("7-compare")
    editor.page.keyboard.up("o")
    assert editor.page.evaluate(clip) == split_clip != "none"
    # Press and hold on touch screens: the Original button.
    editor.by("compare-hold").dispatch_event("pointerdown", {"pointerId": 1})
    assert editor.page.evaluate(clip) == "none"
    editor.by("compare-hold").dispatch_event("pointerup", {"pointerId": 1})
    assert editor.page.evaluate(clip) == split_clip
    expect(editor.by("split")).to_have_value("30")


def test_history_survives_a_reload_and_continue_chains_a_second_edit(editor, photo):
    editor.open(photo)
    editor.click_pixel(100, 80)
    editor.run_edit(prompt="a red ball")
    expect(editor.by("history-0")).to_be_visible()

    editor.page.reload()
    expect(editor.by("history-0")).to_be_visible(timeout=20_000)
    expect(editor.by("history-0")).to_contain_text("a red ball")
    expect(editor.by("history-1")).to_have_count(0)
    editor.by("history-0").click()
    expect(editor.by("result-image")).to_be_visible()
    editor.page.wait_for_function("() => document.getElementById('after').naturalWidth > 0")
    editor.shot("8-history")

    # Continue from here: the result becomes the photo, and a second edit chains onto it.
    editor.by("history-continue").click()
    expect(editor.by("photo-meta")).to_contain_text(".replace.png")
    editor.settle()
    editor.by("op-remove").click()
    editor.click_pixel(300, 200)
    editor.run_edit(prompt="")
    expect(editor.by("history-1")).to_be_visible()
    expect(editor.by("history-0")).to_contain_text("Remove")
    with editor.page.expect_download() as download:
        editor.by("history-recipe").click()
    recipe = json.loads(Path(download.value.path()).read_text())
    assert [edit["op"] for edit in recipe["edits"]] == ["replace", "remove"]
    assert recipe["edits"][0]["prompt"] == "a red ball"

    # Replay runs the recipe again on the result's own input: the same pixels.
    editor.by("history-replay").click()
    expect(editor.by("status")).to_have_attribute("data-replay", "same", timeout=90_000)


def test_cutout_from_its_button_gives_a_transparent_result(editor, photo):
    """Cut out is offered from the registry like any operation; its result is RGBA: the erased
    stroke is transparent, the rest of the (tiny SAM's whole-photo) selection opaque."""
    editor.open(photo)
    editor.find("cat")
    editor.by("tool-erase").click()
    editor.by("brush-size").fill("60")
    x0, y = editor.screen(90, 150)
    x1, _ = editor.screen(360, 150)
    editor.page.mouse.move(x0, y)
    editor.page.mouse.down()
    editor.page.mouse.move(x1, y, steps=8)
    editor.page.mouse.up()
    editor.settle()
    editor.by("op-cutout").click()
    expect(editor.by("prompt-input")).to_have_count(0)  # it paints nothing: no prompt, seed or steps
    expect(editor.by("background-input")).to_be_visible()
    editor.by("run").click()
    editor.page.wait_for_function("() => !document.getElementById('view-result').hidden"
                                  " || document.getElementById('status').classList.contains('error')", timeout=90_000)
    assert "error" not in editor.by("status").get_attribute("class"), editor.by("status").text_content()
    editor.page.wait_for_function("() => document.getElementById('after').naturalWidth > 0")
    alphas = editor.page.evaluate("""(points) => { const el = document.getElementById('after');
        const c = Object.assign(document.createElement('canvas'), {width: el.naturalWidth, height: el.naturalHeight});
        const ctx = c.getContext('2d'); ctx.drawImage(el, 0, 0);
        return points.map(([x, y]) => ctx.getImageData(x, y, 1, 1).data[3]); }""", [[225, 150], [10, 10]])
    assert alphas == [0, 255]
    expect(editor.by("history-0")).to_contain_text("Cut out")
    editor.shot("12-cutout")


def test_new_background_sends_what_the_user_chose(editor, photo, server):
    """The page once re-implemented the pipeline's keep/dilate inversion (it sent --dilate -N when the
    user grew the selection by N). It now sends the user's choices and the server does the algebra:
    the edit is the one `replace --keep cat --dilate 5` makes."""
    import httpx

    editor.open(photo)
    editor.find("cat")
    editor.by("op-background").click()
    editor.by("dilate").fill("5")
    editor.settle()
    editor.run_edit(prompt="a beach", seed=3)
    options = editor.job_options()
    assert options["keep"] == "cat" and options["dilate"] == 5 and "find" not in options
    page_mask = editor.page.evaluate("""async () => { const href = document.getElementById('dl-mask').href;
        const bitmap = await createImageBitmap(await (await fetch(href)).blob());
        const c = Object.assign(document.createElement('canvas'), {width: bitmap.width, height: bitmap.height});
        const ctx = c.getContext('2d'); ctx.drawImage(bitmap, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data; let n = 0;
        for (let i = 0; i < d.length; i += 4) n += d[i] > 127; return n; }""")
    direct = httpx.post(f"{server}/v1/replace?format=json", files={"image": photo.read_bytes()}, data={
        "options": json.dumps({"keep": "cat", "dilate": 5, "box_threshold": 0, "text_threshold": 0,
                               "prompt": "a beach", "seed": 3, "steps": 2})}, timeout=120).json()
    assert page_mask == direct["mask_area"]


def test_a_run_shows_live_previews_before_the_result(editor, photo):
    editor.open(photo)
    editor.click_pixel(100, 80)
    expect(editor.by("preview-toggle")).to_be_checked()
    editor.by("prompt-input").fill("a dog")
    editor.by("steps-input").fill("60")
    editor.by("run").click()
    expect(editor.by("preview")).to_be_visible(timeout=60_000)
    expect(editor.by("result-image")).to_be_hidden()  # the picture of the work came before the result
    expect(editor.page.locator("#preview-caption")).to_contain_text("live preview · step")
    editor.page.wait_for_function("() => document.getElementById('preview').naturalWidth > 0")
    editor.shot("13-preview")
    asked = [path for path, options in editor.sent if path.startswith("/v1/jobs")][-1]
    assert asked == "/v1/jobs?previews=4"
    editor.page.wait_for_function("() => !document.getElementById('view-result').hidden", timeout=120_000)
    expect(editor.by("preview")).to_be_hidden()


def test_cancel_ends_a_run_early_with_progress_and_eta(editor, photo):
    editor.open(photo)
    editor.click_pixel(100, 80)
    editor.by("prompt-input").fill("a dog")
    editor.by("steps-input").fill("500")
    editor.by("run").click()
    expect(editor.by("progress-text")).to_contain_text(re.compile(r"Step \d+ of 500 · about \d+ s left"), timeout=60_000)
    editor.shot("9-progress")
    editor.by("cancel").click()
    expect(editor.by("status")).to_contain_text("cancelled", timeout=60_000)
    step = int(re.search(r"at step (\d+) of 500", editor.by("status").text_content()).group(1))
    assert step < 500
    expect(editor.by("progress")).to_be_hidden()


# ---------------------------------------------------------------------------- keys, touch, offline
def test_shortcuts_overlay_brush_keys_paste_and_copy(browser, server, photo):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    editor = Editor(context.new_page(), server)
    try:
        editor.page.goto(server)
        expect(editor.by("op-replace")).to_be_visible(timeout=20_000)
        # Ctrl+V: paste a photo.
        editor.page.evaluate("""async (bytes) => {
            const file = new File([new Uint8Array(bytes)], 'clip.png', {type: 'image/png'});
            const data = new DataTransfer(); data.items.add(file);
            window.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data})); }""", list(photo.read_bytes()))
        expect(editor.by("photo-meta")).to_contain_text(f"pasted image · {WIDTH}×{HEIGHT}")
        editor.page.keyboard.press("?")
        dialog = editor.by("shortcuts")
        expect(dialog).to_be_visible()
        for keys in ("Ctrl", "[", "]", "Space", "Esc", "Hold O"):
            expect(dialog).to_contain_text(keys)
        editor.shot("10-shortcuts")
        editor.page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()

        size = editor.by("brush-size")
        start = int(size.input_value())
        editor.page.keyboard.press("]")
        assert int(size.input_value()) > start
        editor.page.keyboard.press("[")
        editor.page.keyboard.press("[")
        assert int(size.input_value()) < start
        editor.page.keyboard.press("e")
        expect(editor.by("tool-erase")).to_have_class(re.compile(r"\bon\b"))
        editor.page.keyboard.press("p")
        expect(editor.by("tool-point")).to_have_class(re.compile(r"\bon\b"))

        # Ctrl+C copies the result as a PNG.
        editor.click_pixel(100, 80)
        editor.run_edit()
        editor.page.keyboard.press("Control+c")
        expect(editor.by("status")).to_contain_text("copied")
        kinds = editor.page.evaluate("async () => (await navigator.clipboard.read()).flatMap((item) => item.types)")
        assert "image/png" in kinds
        editor.check_clean()
    finally:
        context.close()


TOUCH = """([kind, points]) => { const el = document.getElementById('viewport');
  points.forEach(([id, x, y]) => el.dispatchEvent(new PointerEvent(kind, {pointerId: id, pointerType: 'touch',
    clientX: x, clientY: y, isPrimary: id === 1, bubbles: true, button: kind === 'pointermove' ? -1 : 0}))); }"""


def test_touch_on_a_phone_sized_screen(browser, server, photo):
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True,
                                  device_scale_factor=2)
    editor = Editor(context.new_page(), server)
    try:
        editor.open(photo)
        assert editor.page.evaluate("() => document.documentElement.scrollWidth") <= 390  # no sideways scrolling
        # A tap adds a point.
        x, y = editor.screen(100, 80)
        editor.page.touchscreen.tap(x, y)
        assert editor.settle() > 0
        assert editor.points_sent() == [[100, 80, 1]]
        # Two fingers moving apart zoom in around their middle; moving together pans.
        level = editor.by("zoom-level").text_content()
        cx, cy = editor.screen(225, 150)
        editor.page.evaluate(TOUCH, ["pointerdown", [[1, cx - 20, cy], [2, cx + 20, cy]]])
        editor.page.evaluate(TOUCH, ["pointermove", [[1, cx - 60, cy], [2, cx + 60, cy]]])
        editor.page.evaluate(TOUCH, ["pointerup", [[1, cx - 60, cy], [2, cx + 60, cy]]])
        zoomed = int(editor.by("zoom-level").text_content().rstrip("%"))
        assert zoomed == pytest.approx(3 * int(level.rstrip("%")), abs=2)
        assert editor.screen(225, 150) == pytest.approx((cx, cy), abs=1)  # the middle stayed put
        assert editor.points_sent() == [[100, 80, 1]]  # a pinch adds no point
        # A one-finger stroke paints with the brush.
        editor.by("tool-brush").click()
        before = editor.settle()
        sx, sy = editor.screen(200, 40)
        editor.page.evaluate(TOUCH, ["pointerdown", [[3, sx, sy]]])
        editor.page.evaluate(TOUCH, ["pointermove", [[3, sx + 30, sy + 10]]])
        editor.page.evaluate(TOUCH, ["pointerup", [[3, sx + 30, sy + 10]]])
        assert editor.settle() > before
        for test_id in ("run", "undo", "op-replace", "prompt-input", "history"):
            expect(editor.by(test_id)).to_be_attached()
        editor.by("run").scroll_into_view_if_needed()
        expect(editor.by("run")).to_be_in_viewport()
        editor.shot("11-phone")
        editor.check_clean()
    finally:
        context.close()


@pytest.fixture()
def blackout_server(tiny, blackout_operation):
    """A server in this process whose registry holds the test-only operation "blackout"."""
    import uvicorn

    from promptpaint.options import ModelOptions
    from promptpaint.server.app import create_app
    from promptpaint.server.settings import ServerSettings

    models = ModelOptions(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]),
                          inpainter=str(tiny["sd-inpaint"]), remover="telea", device="cpu")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ServerSettings(models=models, preload=False)),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def test_a_new_operation_and_its_options_appear_without_page_changes(browser, blackout_server, photo):
    """The operation buttons and option controls come from the server's registry: an operation the
    page has never heard of (with an option of its own, --level) can be chosen and run."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    editor = Editor(context.new_page(), blackout_server)
    try:
        editor.open(photo)
        expect(editor.by("op-blackout")).to_have_text("Blackout")
        editor.by("op-blackout").click()
        expect(editor.by("level-input")).to_be_hidden()  # its own option, under "More options"
        editor.page.get_by_text("More options").click()
        editor.by("level-input").fill("7")
        area = editor.click_pixel(100, 80)
        editor.run_edit(prompt="")
        options = editor.job_options()
        assert options["op"] == "blackout" and options["level"] == 7 and options["point"] == [[100, 80, 1]]
        painted, changed = editor.page.evaluate("""() => { const read = (el) => { const c = document.createElement('canvas');
            c.width = el.naturalWidth || el.width; c.height = el.naturalHeight || el.height;
            const ctx = c.getContext('2d'); ctx.drawImage(el, 0, 0); return ctx.getImageData(0, 0, c.width, c.height).data; };
            const a = read(document.getElementById('after')), b = read(document.getElementById('photo'));
            let painted = 0, changed = 0;
            for (let i = 0; i < a.length; i += 4) {
              painted += a[i] === 7 && a[i + 1] === 7 && a[i + 2] === 7;
              changed += a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2]; }
            return [painted, changed]; }""")
        assert painted >= area >= changed > 0  # the selection, and nothing else, became grey level 7
        editor.check_clean()
    finally:
        context.close()


def test_find_sends_phrases_and_remove_offers_the_shadow_checkbox(editor, photo):
    """#13: the find field sends its words as they are and the server reads them ("the left cat"
    keeps one instance); remove's --with-shadow is a checkbox built from its schema, and is sent."""
    editor.open(photo)
    editor.find("the left cat")
    options = [options for path, options in editor.sent if path.startswith("/v1/segment")][-1]
    assert options["find"] == "the left cat"
    expect(editor.by("status")).to_contain_text("1 instance,")
    editor.by("op-remove").click()
    shadow = editor.by("with-shadow-input")
    expect(shadow).to_be_visible()
    expect(shadow).not_to_be_checked()
    shadow.check()
    editor.run_edit(prompt="")
    options = editor.job_options()
    assert (options["op"], options["find"], options["with_shadow"]) == ("remove", "the left cat", True)


def test_the_status_line_says_what_the_server_noted(editor, photo):
    """What an answer notes beside its result (#13's partial finds, a clamped box, detections past
    the server's limit, a shadow too large to go) reaches the status line, as the CLI prints it on stderr. The answer is the
    server's own, with notes added (the tiny detector at thresholds of 0 finds every label)."""
    editor.open(photo)

    def noted(route):
        response = route.fetch()
        data = response.json()
        data.update(missing=["rocket"], capped=["only the 100 best-scoring are kept"],
                    left_out=["left out 1 shadow region(s)"])
        route.fulfill(response=response, json=data)

    editor.page.route("**/v1/segment", noted)
    editor.find("cat. rocket")
    status = editor.by("status")
    expect(status).to_contain_text("Nothing found for “rocket”. only the 100 best-scoring are kept "
                                   "left out 1 shadow region(s)")
    expect(status).to_have_class(re.compile(r"\bwarn\b"))
    editor.page.unroute("**/v1/segment")
    editor.find("cat")
    expect(status).not_to_contain_text("Nothing found")


def test_api_docs_render_without_internet(editor):
    """The machine has no internet: Swagger UI must come from the server itself."""
    editor.page.goto(f"{editor.server}/docs")
    expect(editor.page.locator(".swagger-ui .opblock-summary-path").first).to_be_visible(timeout=20_000)
    assert editor.page.locator(".swagger-ui .opblock").count() >= 10  # the /v1 operations are listed
