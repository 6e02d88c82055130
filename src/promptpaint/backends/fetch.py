"""Exactly the files promptpaint reads from a hub repository: which ones, whether they are on disk,
and downloading them.

What is read, by layout (see ``families.Family.layout``):

- ``transformers`` / ``diffusers-model``: the root's config and tokenizer files and its weights;
- ``diffusers``: ``model_index.json`` and, for each component it lists (except the safety checker,
  feature extractor and image encoder, which promptpaint never runs), that folder's config and
  tokenizer files and its weights. Nothing else at the root: FLUX.1-Fill-dev's 24 GB
  ``flux1-fill-dev.safetensors`` or SD's ``.ckpt`` are never fetched;
- ``onnx``: the one full-precision export (``lama.onnx`` first) and its external data file, if any;
- ``lora``: the root's safetensors.

Weights are safetensors only (never pickles: .bin, .ckpt, .pt, .pth; nor .msgpack or .h5), and the
fp16 variant (``*.fp16.safetensors``) instead of full precision when the model will run in half
precision and the repository has one.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_PREFIX = r"(diffusion_pytorch_model|model)"
_SHARD = r"(-\d{5}-of-\d{5})?"
PLAIN_WEIGHTS = re.compile(rf"^{_PREFIX}{_SHARD}\.safetensors$")
PLAIN_INDEX = re.compile(rf"^{_PREFIX}\.safetensors\.index\.json$")
FP16_WEIGHTS = re.compile(rf"^{_PREFIX}\.fp16{_SHARD}\.safetensors$")
FP16_INDEX = re.compile(rf"^{_PREFIX}\.safetensors\.index\.fp16\.json$")
#: config, tokenizer and scheduler files (json, vocabularies, sentencepiece and tiktoken models)
CONFIG_SUFFIXES = (".json", ".txt", ".model", ".tiktoken")
#: components that diffusers pipelines list and promptpaint never runs (an editing tool has no
#: safety checker; no IP-adapter image encoder); the inpainters load with these set to None
UNUSED_COMPONENTS = ("safety_checker", "feature_extractor", "image_encoder")
#: ONNX exports that are not full precision (LaMa repositories ship several beside the fp32 one)
_REDUCED_ONNX = re.compile(r"(fp16|int8|uint8|quant|q4|q8)", re.IGNORECASE)


@dataclass
class Selection:
    """The files to read from a repository (paths relative to its root), and what it lacks."""

    files: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # e.g. "unet has no safetensors weights"


def _is_index(name: str) -> bool:
    return bool(PLAIN_INDEX.match(name) or FP16_INDEX.match(name))


def pick_weights(names: Iterable[str], half: bool) -> list[str]:
    """The safetensors weights (and their shard index) of one folder: the fp16 variant when ``half``
    and present (or when it is all there is), else the full-precision files."""
    names = list(names)
    plain = [n for n in names if PLAIN_WEIGHTS.match(n) or PLAIN_INDEX.match(n)]
    fp16 = [n for n in names if FP16_WEIGHTS.match(n) or FP16_INDEX.match(n)]
    has_plain = any(PLAIN_WEIGHTS.match(n) for n in plain)
    has_fp16 = any(FP16_WEIGHTS.match(n) for n in fp16)
    if has_fp16 and (half or not has_plain):
        return sorted(fp16)
    return sorted(plain) if has_plain else []


def _config_files(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if n.endswith(CONFIG_SUFFIXES) and not _is_index(n))


def _by_folder(files: Iterable[str]) -> dict[str, list[str]]:
    folders: dict[str, list[str]] = {}
    for path in files:
        folder, _, name = path.rpartition("/")
        folders.setdefault(folder, []).append(name)
    return folders


def components(model_index: dict[str, Any]) -> list[str]:
    """The component folders a diffusers ``model_index.json`` lists and promptpaint loads."""
    return [name for name, value in model_index.items()
            if not name.startswith("_") and isinstance(value, list) and len(value) == 2 and all(value)
            and name not in UNUSED_COMPONENTS]


def _needs_weights(class_name: str) -> bool:
    """Whether a diffusers component holds weights (tokenizers and schedulers do not)."""
    return not class_name.endswith(("Tokenizer", "TokenizerFast", "Scheduler", "Processor", "FeatureExtractor"))


def pick_onnx(names: Iterable[str]) -> list[str]:
    """The full-precision ONNX export (``lama.onnx`` first) and its external data file, if any."""
    onnx = sorted(n for n in names if n.endswith(".onnx"))
    chosen = [n for n in onnx if n == "lama.onnx"] or [n for n in onnx if not _REDUCED_ONNX.search(n)] or onnx
    if not chosen:
        return []
    name = chosen[0]
    data = {f"{name}.data", f"{name}_data", f"{name[:-5]}.onnx_data"}
    return [name] + sorted(n for n in names if n in data)


def select_files(layout: str, files: Iterable[str], *, model_index: dict[str, Any] | None = None,
                 half: bool = False, pinned: tuple[str, ...] = ()) -> Selection:
    """The files of a repository (its listing: paths from the root) that promptpaint reads;
    ``pinned`` names them outright (e.g. one LoRA of a repository that holds several)."""
    files = list(files)
    folders = _by_folder(files)
    root = folders.get("", [])
    chosen = Selection()
    if pinned:
        chosen.files = list(pinned)
        chosen.problems = [f"no {name}" for name in pinned if name not in files]
    elif layout in ("transformers", "diffusers-model"):
        weights = pick_weights(root, half)
        chosen.files = _config_files(root) + weights
        if "config.json" not in root:
            chosen.problems.append("no config.json")
        if not weights:
            chosen.problems.append("no safetensors weights")
    elif layout == "diffusers":
        if model_index is None:
            chosen.problems.append("no model_index.json")
            return chosen
        chosen.files = ["model_index.json"]
        for name in components(model_index):
            names = folders.get(name, [])
            weights = pick_weights(names, half)
            chosen.files += [f"{name}/{n}" for n in _config_files(names) + weights]
            if not names:
                chosen.problems.append(f"no {name} folder")
            elif not weights and _needs_weights(model_index[name][1]):
                chosen.problems.append(f"{name} has no safetensors weights")
    elif layout == "onnx":
        chosen.files = pick_onnx(root)
        if not chosen.files:
            chosen.problems.append("no .onnx file")
    elif layout == "lora":
        chosen.files = sorted(n for n in root if n.endswith(".safetensors"))
        if not chosen.files:
            chosen.problems.append("no safetensors file")
    elif layout != "builtin":
        raise ValueError(f"unknown layout {layout!r}")
    return chosen


# ------------------------------------------------------------------------ the local cache

def hub_cache() -> Path:
    """The Hugging Face hub cache in use (``HF_HUB_CACHE``, else ``HF_HOME/hub``)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def offline() -> bool:
    """Whether the hub may not be contacted (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``)."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def snapshot_folder(repo_id: str) -> Path | None:
    """The cached snapshot of ``repo_id``'s main branch, or None (read from the cache's own layout:
    ``models--owner--name/refs/main`` names the snapshot)."""
    repo = hub_cache() / ("models--" + repo_id.replace("/", "--"))
    try:
        commit = (repo / "refs" / "main").read_text().strip()
    except OSError:
        return None
    folder = repo / "snapshots" / commit
    return folder if folder.is_dir() else None


def local_listing(folder: Path) -> list[str]:
    """Every file under ``folder``, as paths relative to it (the cache's links count as files)."""
    return sorted(str(p.relative_to(folder)).replace(os.sep, "/") for p in folder.rglob("*")
                  if p.is_file() and not p.name.startswith("."))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def missing_pieces(folder: Path, layout: str, pinned: tuple[str, ...] = ()) -> list[str]:
    """What a local folder lacks to be loaded (empty when complete): a config, a component's
    weights, a shard its index names. Either weight precision counts."""
    listing = local_listing(folder)
    model_index = _read_json(folder / "model_index.json") if layout == "diffusers" else None
    problems = select_files(layout, listing, model_index=model_index, half=True, pinned=pinned).problems
    present = set(listing)
    for index in (f for f in listing if _is_index(f.rpartition("/")[2])):
        shards = set(((_read_json(folder / index) or {}).get("weight_map") or {}).values())
        base = index.rpartition("/")[0]
        lost = sorted(s for s in shards if (f"{base}/{s}" if base else s) not in present)
        if lost:
            problems.append(f"{index} names missing shards ({', '.join(lost[:2])}{', ...' if len(lost) > 2 else ''})")
    return problems


def load_kwargs(folder: Path, half: bool) -> dict[str, Any]:
    """Keyword arguments for a diffusers ``from_pretrained(folder)``: ``variant="fp16"`` when the
    fp16 files are the ones to read (half precision, or all there is), and ``None`` for the
    components promptpaint never runs (they are not fetched)."""
    model_index = _read_json(folder / "model_index.json") or {}
    kwargs: dict[str, Any] = {name: None for name in UNUSED_COMPONENTS
                              if isinstance(model_index.get(name), list) and all(model_index[name])}
    folders = _by_folder(local_listing(folder))
    for name in components(model_index):
        if any(FP16_WEIGHTS.match(n) for n in pick_weights(folders.get(name, []), half)):
            kwargs["variant"] = "fp16"
    return kwargs


# ------------------------------------------------------------------------ downloading

def repo_files(repo_id: str) -> dict[str, int]:
    """The repository's files and their sizes (one hub call)."""
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo_id, files_metadata=True, timeout=5)
    return {s.rfilename: int(s.size or 0) for s in info.siblings or []}


def download_file(repo_id: str, filename: str) -> Path:
    """One file into the hub cache: resumable, with huggingface_hub's progress bar and token."""
    import huggingface_hub

    return Path(huggingface_hub.hf_hub_download(repo_id, filename))


def plan(repo_id: str, layout: str, half: bool | Callable[[], bool],
         pinned: tuple[str, ...] = ()) -> tuple[Selection, dict[str, int]]:
    """Ask the hub which files ``repo_id`` has and choose the ones to read (``model_index.json`` is
    downloaded first for a diffusers pipeline: it names the component folders). Only the
    diffusers loader reads fp16 variants; ``half`` is asked after the hub answered (it may import
    torch to see the device)."""
    listing = repo_files(repo_id)
    half = layout == "diffusers" and (half() if callable(half) else half)
    model_index = None
    if layout == "diffusers" and "model_index.json" in listing and not pinned:
        model_index = _read_json(download_file(repo_id, "model_index.json"))
    return select_files(layout, listing, model_index=model_index, half=half, pinned=pinned), listing


def download(repo_id: str, layout: str, half: bool | Callable[[], bool], progress: bool = False,
             pinned: tuple[str, ...] = ()) -> Path:
    """Download exactly what promptpaint reads of ``repo_id``; returns the snapshot folder."""
    selection, listing = plan(repo_id, layout, half, pinned)
    if selection.problems:
        raise FileNotFoundError(f"{repo_id} cannot be used: {'; '.join(selection.problems)}")
    total = sum(listing.get(f, 0) for f in selection.files)
    log.info("downloading %d files of %s (%s)", len(selection.files), repo_id, human_size(total))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(selection.files), unit="file", desc=repo_id, leave=True)
    folder = None
    try:
        for name in selection.files:
            path = download_file(repo_id, name)
            folder = Path(str(path)[: -len(name)]) if str(path).endswith(name) else path.parent
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return snapshot_folder(repo_id) or folder


def runs_half(device: str, dtype: str) -> bool:
    """Whether diffusion models will run in half precision (fp16 or bf16) with these options, so
    that the fp16 variant is the one to fetch (see ``runtime.pick_dtype``: CUDA and MPS)."""
    if dtype != "auto":
        return dtype in ("float16", "bfloat16")
    if device == "auto":
        try:
            from promptpaint.backends.runtime import pick_device

            device = pick_device("auto")
        except Exception:  # noqa: BLE001 - no torch here: a download-only machine, assume a CPU
            device = "cpu"
    return device in ("cuda", "mps")


def human_size(size: int | None) -> str:
    """``1234567890`` -> ``"1.2 GB"`` (decimal units, as the hub shows them)."""
    if size is None:
        return "?"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
