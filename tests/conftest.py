"""Shared fixtures: the tiny-model kit (built once per machine into .cache/) and sample photos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no test may touch the network
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# The tiny models are all overhead: one thread per process is several times faster than torch's
# default on this 2-core machine, more so when CLI subprocesses run beside the test process.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
TINY_DIR = Path(os.environ.get("PROMPTPAINT_TINY_MODELS", ROOT / ".cache" / "tiny-models"))


@pytest.fixture(scope="session")
def tiny() -> dict[str, Path]:
    """name -> folder of every tiny model (grounding-dino, owlv2, sam, sam2, sam3, sd-inpaint, ...)."""
    from promptpaint.testing.tiny_models import build_all

    return {name: Path(folder) for name, folder in build_all(TINY_DIR).items()}


@pytest.fixture(scope="session")
def cat_rgb() -> np.ndarray:
    """A real photo (300x451 cat, from scikit-image's wheel: no download)."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.chelsea())


@pytest.fixture()
def cat_png(tmp_path, cat_rgb) -> Path:
    from PIL import Image

    path = tmp_path / "cat.png"
    Image.fromarray(cat_rgb).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_pipeline(tiny):
    """A Pipeline wired to the tiny models (Grounding DINO, SAM, SD inpainting, LaMa, ViTMatte)."""
    from promptpaint.pipeline.pipeline import Pipeline

    return Pipeline(detector=str(tiny["grounding-dino"]), segmenter=str(tiny["sam"]),
                    inpainter=str(tiny["sd-inpaint"]), remover=str(tiny["lama"]),
                    matting=str(tiny["vitmatte"]), device="cpu")


@pytest.fixture()
def blackout_operation():
    """A test-only operation, registered for one test: it paints the selection one grey level
    (``--level``) without any model, so registry dispatch can be checked through every front end."""
    from typing import Literal

    import promptpaint.operations.base as base
    from promptpaint.operations import Operation
    from promptpaint.options import EditOptions
    from promptpaint.pipeline.editing import Generated

    class BlackoutEdit(EditOptions):
        """Paint the selection one grey level."""

        op: Literal["blackout"] = "blackout"
        level: int = 0

    class Blackout(Operation):
        """Paint the selection one grey level (a test operation: no model)."""

        name = "blackout"
        options = BlackoutEdit
        generator = None

        def steps(self, job):
            seg = yield from job.select(dilate=job.resolve("dilate", 0))
            painted = job.image.rgb.copy()
            painted[seg.mask] = job.edit.level
            return job.result(Generated([painted], []), seg.mask.astype(np.float32), segmentation=seg)

    yield Blackout
    base._REGISTRY.pop("blackout", None)


# ------------------------------------------------------------------ a Hugging Face hub without network

class FakeHub:
    """An empty hub cache in a temporary folder, and (once ``serve()`` is called) a hub that answers
    from the recorded listings of ``tests/backends/hub_listings.py``: ``HfApi.model_info`` lists a
    repository's files and ``hf_hub_download`` writes one into the cache as the real one does
    (``models--owner--name/snapshots/<commit>/...`` with ``refs/main``), recording each call."""

    commit = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, cache: Path, monkeypatch):
        import importlib.util

        spec = importlib.util.spec_from_file_location("hub_listings", ROOT / "tests" / "backends" / "hub_listings.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self.listings, self.model_indexes = module.LISTINGS, module.MODEL_INDEXES
        self.cache = cache
        self.downloads: list[tuple[str, str]] = []
        self.monkeypatch = monkeypatch

    def add(self, repo_id: str, files: dict[str, bytes | str]) -> Path:
        """Put files of ``repo_id`` into the cache, as if downloaded; returns the snapshot folder."""
        repo = self.cache / ("models--" + repo_id.replace("/", "--"))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(self.commit)
        snapshot = repo / "snapshots" / self.commit
        for name, content in files.items():
            path = snapshot / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        return snapshot

    def serve(self) -> FakeHub:
        """Answer hub calls from the recorded listings (and allow them: HF_HUB_OFFLINE unset)."""
        import json as _json
        from types import SimpleNamespace

        import huggingface_hub
        from huggingface_hub.errors import RepositoryNotFoundError

        hub = self

        def model_info(self_api, repo_id, *args, **kwargs):
            if repo_id not in hub.listings:
                import httpx2

                request = httpx2.Request("GET", f"https://huggingface.co/api/models/{repo_id}")
                raise RepositoryNotFoundError(f"404 {repo_id}", response=httpx2.Response(404, request=request))
            return SimpleNamespace(sha=hub.commit, siblings=[SimpleNamespace(rfilename=n, size=s)
                                                             for n, s in hub.listings[repo_id].items()])

        def hf_hub_download(repo_id, filename, *args, **kwargs):
            hub.downloads.append((repo_id, filename))
            if filename == "model_index.json" and repo_id in hub.model_indexes:
                content = _json.dumps(hub.model_indexes[repo_id])
            elif filename.endswith(".json"):
                content = _json.dumps({"weight_map": {}} if ".index." in filename else {"model_type": "stub"})
            else:
                content = b"weights"
            return str(hub.add(repo_id, {filename: content}) / filename)

        self.monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        self.monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        self.monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
        self.monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
        return self


@pytest.fixture()
def fake_hub(tmp_path, monkeypatch) -> FakeHub:
    """An empty hub cache (HF_HOME and huggingface_hub's constants point into tmp_path); offline
    until ``fake_hub.serve()``."""
    from huggingface_hub import constants

    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return FakeHub(home / "hub", monkeypatch)
