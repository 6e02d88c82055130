"""Click to new mask: the latency a user feels when clicking on the photo in the web page.

    python -m benchmarks.interactive [--models full|tiny] [--size WxH ...] [--clicks N] [--find] [--json OUT.json]

It starts the real ``promptpaint serve`` (full-size SAM-B with random weights by default: the compute of
facebook/sam-vit-base, see ``benchmarks/models.py``) on a free loopback port and makes the page's own
HTTP calls: ``POST /v1/images`` once, then for every click ``POST /v1/segment`` with the ``image_id`` and
the points so far. The first click pays for the image embedding; the later ones reuse it. The page asks
for the bare mask (``?format=png``) when points alone select, and for the JSON answer (instances and
the mask) when words are given too (``--find``: full-size Grounding DINO, whose answer is cached per
image and words, so only the first click pays for it); both answers are timed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import load_average
from benchmarks.models import DEFAULT_CACHE, full_folders, tiny_folders

TARGET_MS = 300
START_TIMEOUT_S = 600
CHILD_ENV = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
             "PYTHONWARNINGS": "ignore"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.interactive", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", choices=["full", "tiny"], default="full",
                        help="full: full-size SAM-B (random weights, built once); tiny: the test kit (a smoke run)")
    parser.add_argument("--size", nargs="+", default=["1024x768", "4032x3024"],
                        help="photo sizes WxH (default: a 1024x768 photo and a 12-megapixel phone photo)")
    parser.add_argument("--clicks", type=int, default=20, help="timed clicks per size after the first (default 20)")
    parser.add_argument("--find", action="store_true", help="also send find=cat (full-size Grounding DINO)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where models are built (default .cache/)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    try:
        args.sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.size]
    except ValueError:
        parser.error(f"--size must be WxH, got {args.size}")
    return args


def photo(width: int, height: int) -> bytes:
    """scikit-image's cat, resized to the size asked for, as PNG bytes (what the page uploads)."""
    import io

    import skimage.data
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(skimage.data.chelsea()).resize((width, height), Image.Resampling.LANCZOS).save(out, "PNG")
    return out.getvalue()


def clicks(width: int, height: int, count: int, seed: int = 0) -> list[list[list[int]]]:
    """What a user sends: a first point, then 1 to 4 points (some negative), one click at a time."""
    rng = random.Random(seed)
    sessions, points = [], []
    for i in range(count + 1):
        if len(points) >= 4:
            points = []
        label = 1 if not points or rng.random() < 0.6 else 0
        points = points + [[rng.randrange(width), rng.randrange(height), label]]
        sessions.append(points)
    return sessions


def summary(ms: list[float]) -> dict:
    ordered = sorted(ms)
    return {"median_ms": round(statistics.median(ordered), 1),
            "p90_ms": round(ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))], 1),
            "min_ms": round(ordered[0], 1), "max_ms": round(ordered[-1], 1), "n": len(ordered)}


# ---------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``promptpaint serve`` in a process of its own, as a user starts it."""

    def __init__(self, folders: dict[str, Path], log: Path):
        self.url = f"http://127.0.0.1:{_free_port()}"
        command = [sys.executable, "-m", "promptpaint", "serve", "--host", "127.0.0.1", "--port",
                   self.url.rsplit(":", 1)[1], "--detector", str(folders["grounding-dino"]),
                   "--segmenter", str(folders["sam"]), "--inpainter", str(folders["sd-inpaint"]),
                   "--remover", "telea", "--matting", "none", "--device", "cpu", "--max-upload-mb", "200"]
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, **CHILD_ENV})

    def wait(self) -> None:
        import httpx

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"promptpaint serve exited:\n{self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"promptpaint serve did not start in {START_TIMEOUT_S} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


# ---------------------------------------------------------------------------- measuring
def find_options(client, image_id: str, instances: int = 5) -> dict:
    """``find=cat`` with the box threshold that lets through the ``instances`` best boxes: a random
    detector scores its 900 queries alike, and a threshold of 0 would segment all of them (gigabytes of
    masks); a real one finds a few. The detector's raw answer is cached, so this costs one pass."""
    found = client.post("/v1/detect", data={"image_id": image_id, "options": json.dumps(
        {"find": "cat", "box_threshold": 0, "text_threshold": 0})})
    found.raise_for_status()
    scores = sorted((d["score"] for d in found.json()["detections"]), reverse=True)
    return {"find": "cat", "box_threshold": scores[min(instances, len(scores)) - 1], "text_threshold": 0}


def over_http(url: str, size: tuple[int, int], count: int, find: bool) -> dict:
    import httpx

    width, height = size
    with httpx.Client(base_url=url, timeout=600) as client:
        started = time.perf_counter()
        image_id = client.post("/v1/images", files={"image": ("photo.png", photo(width, height))}).json()["image_id"]
        upload_ms = 1000 * (time.perf_counter() - started)

        words = find_options(client, image_id) if find else {}

        def click(points: list, fmt: str = "json") -> float:
            options = {"point": points, **words}
            started = time.perf_counter()
            response = client.post(f"/v1/segment?format={fmt}", data={"image_id": image_id,
                                                                      "options": json.dumps(options)})
            response.raise_for_status()
            if fmt == "json":
                response.json()
            return 1000 * (time.perf_counter() - started)

        page_format = "json" if find else "png"  # what the page asks for (see static/selection.js)
        sessions = clicks(width, height, count)
        first = click(sessions[0], page_format)
        answers = {fmt: [click(points, fmt) for points in sessions[1:]] for fmt in ("png", "json")}
    return {"size": f"{width}x{height}", "upload_ms": round(upload_ms, 1), "first_click_ms": round(first, 1),
            "page_format": page_format, "click_ms": summary(answers[page_format]),
            "click_png_ms": summary(answers["png"]), "click_json_ms": summary(answers["json"])}


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.models == "full":
        wanted = ["sam", "grounding-dino"] if args.find else ["sam"]
        folders = {**tiny_folders(args.cache), **full_folders(args.cache, only=wanted)}
    else:
        folders = tiny_folders(args.cache)
    print(f"segmenter {folders['sam']} ({args.models}); load average {load_average()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(folders, Path(tmp) / "serve.log")
        try:
            server.wait()
            results = [over_http(server.url, size, args.clicks, args.find) for size in args.sizes]
        finally:
            server.stop()
    figures = {"models": args.models, "find": args.find, "target_ms": TARGET_MS, "results": results,
               "load_average": load_average(), "cpus": os.cpu_count(), "machine": platform.platform(),
               "command": "python -m benchmarks.interactive " + " ".join(argv if argv is not None else sys.argv[1:])}
    model = "full-size SAM-B" if args.models == "full" else "tiny SAM"
    print(f"\nclick -> new mask ({model}{', find=cat' if args.find else ''}; {args.clicks} clicks per photo; "
          f"median and p90 as the page asks, {'JSON' if args.find else 'PNG'})")
    other = "json" if not args.find else "png"
    print(f"{'photo':>10} {'first click':>12} {'median':>8} {'p90':>8} {other + ' median':>12} {other + ' p90':>9}")
    for r in results:
        print(f"{r['size']:>10} {r['first_click_ms']:>10.0f}ms {r['click_ms']['median_ms']:>6.0f}ms "
              f"{r['click_ms']['p90_ms']:>6.0f}ms {r[f'click_{other}_ms']['median_ms']:>10.0f}ms "
              f"{r[f'click_{other}_ms']['p90_ms']:>7.0f}ms")
    verdict = all(r["click_ms"]["median_ms"] < TARGET_MS for r in results)
    print(f"target: median under {TARGET_MS} ms: {'met' if verdict else 'NOT met'} "
          f"(load average {figures['load_average']} on {figures['cpus']} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
