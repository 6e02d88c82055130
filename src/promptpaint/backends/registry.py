"""Model names -> loadable local folders, with one code path for aliases, hub ids and folders.

Everything is loaded from a local folder in the end: a hub id is first looked up in the local
Hugging Face cache and downloaded (safetensors only) when it is missing and the hub is reachable.
That keeps transformers' two-minute retry loop away from users: an unreachable hub fails in
seconds, with one line saying what to do.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from promptpaint.errors import ModelLoadError

log = logging.getLogger(__name__)

#: alias -> (hub id, family). Families pick the backend class.
ALIASES: dict[str, tuple[str, str]] = {
    "gdino-tiny": ("IDEA-Research/grounding-dino-tiny", "grounding-dino"),
    "gdino-base": ("IDEA-Research/grounding-dino-base", "grounding-dino"),
    "owlv2": ("google/owlv2-base-patch16-ensemble", "owlv2"),
    "sam-b": ("facebook/sam-vit-base", "sam"),
    "sam-l": ("facebook/sam-vit-large", "sam"),
    "sam-h": ("facebook/sam-vit-huge", "sam"),
    "sam2-t": ("facebook/sam2.1-hiera-tiny", "sam2"),
    "sam2-s": ("facebook/sam2.1-hiera-small", "sam2"),
    "sam2-b": ("facebook/sam2.1-hiera-base-plus", "sam2"),
    "sam2-l": ("facebook/sam2.1-hiera-large", "sam2"),
    "sam3": ("facebook/sam3", "sam3"),
    "sd15": ("stable-diffusion-v1-5/stable-diffusion-inpainting", "sd-inpaint"),
    "sdxl": ("diffusers/stable-diffusion-xl-1.0-inpainting-0.1", "sdxl-inpaint"),
    "flux-fill": ("black-forest-labs/FLUX.1-Fill-dev", "flux-fill"),
    "lama": ("g-ronimo/lama", "lama"),
    "telea": ("opencv:telea", "telea"),
}

#: model_type in config.json / _class_name in model_index.json -> family
_CONFIG_FAMILIES = {
    "grounding-dino": "grounding-dino",
    "mm-grounding-dino": "grounding-dino",
    "owlv2": "owlv2",
    "sam": "sam",
    "sam2": "sam2",
    "sam3": "sam3",
    "sam3_video": "sam3",
    "StableDiffusionInpaintPipeline": "sd-inpaint",
    "StableDiffusionXLInpaintPipeline": "sdxl-inpaint",
    "StableDiffusionXLPipeline": "sdxl-inpaint",
    "StableDiffusionPipeline": "sd-inpaint",
    "FluxFillPipeline": "flux-fill",
}

DETECTOR_FAMILIES = ("grounding-dino", "owlv2", "sam3")
SEGMENTER_FAMILIES = ("sam", "sam2", "sam3")
INPAINTER_FAMILIES = ("sd-inpaint", "sdxl-inpaint", "flux-fill")
REMOVER_FAMILIES = ("lama", "telea", *INPAINTER_FAMILIES)

# Only weights in these formats are ever fetched: never pickles, never remote code.
_WEIGHT_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "*.tiktoken", "*.onnx", "*.md"]
_SKIP_PATTERNS = ["*.bin", "*.ckpt", "*.pt", "*.pth", "*.msgpack", "*.h5", "*.fp16.safetensors",
                  "*_fp16.onnx", "*_int8.onnx", "*_512_*.onnx", "*.onnx_data"]


@dataclass(frozen=True)
class ModelRef:
    """A resolved model name: what the user typed, the hub id or folder, and the family."""

    name: str
    source: str  # hub id, local folder, or "opencv:telea"
    family: str
    is_local: bool

    @property
    def id(self) -> str:
        """What to record in outputs: the hub id, or the folder path."""
        return self.source


def _family_from_folder(folder: Path) -> str | None:
    import json

    for name, key in (("model_index.json", "_class_name"), ("config.json", "model_type")):
        file = folder / name
        if file.is_file():
            try:
                value = json.loads(file.read_text()).get(key)
            except (OSError, ValueError):
                return None
            return _CONFIG_FAMILIES.get(value)
    if any(folder.glob("*.onnx")):
        return "lama"
    return None


def _family_from_id(hub_id: str) -> str | None:
    lower = hub_id.lower()
    for needle, family in (("grounding-dino", "grounding-dino"), ("owlv2", "owlv2"), ("sam2", "sam2"),
                           ("sam3", "sam3"), ("sam-vit", "sam"), ("xl", "sdxl-inpaint"), ("flux", "flux-fill"),
                           ("inpaint", "sd-inpaint"), ("lama", "lama")):
        if needle in lower:
            return family
    return None


def resolve(name: str, allowed: tuple[str, ...] | None = None, role: str = "model") -> ModelRef:
    """Resolve an alias, hub id or local folder; check it is of an ``allowed`` family."""
    name = str(name).strip()
    if not name:
        raise ModelLoadError(f"no {role} given")
    if name in ALIASES:
        source, family = ALIASES[name]
        ref = ModelRef(name, source, family, False)
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser().resolve()
        family = _family_from_folder(folder)
        if family is None:
            raise ModelLoadError(f"{role} folder {folder} holds no recognisable model (no config.json, "
                                 "model_index.json or .onnx file)")
        ref = ModelRef(name, str(folder), family, True)
    elif name.count("/") == 1 and not name.startswith((".", "/", "~")):
        family = _family_from_id(name)
        if family is None:
            raise ModelLoadError(f"cannot tell what kind of model {name!r} is; pass a known alias "
                                 f"({', '.join(ALIASES)}) or a local folder with its config")
        ref = ModelRef(name, name, family, False)
    else:
        raise ModelLoadError(f"{role} {name!r} is neither a known alias ({', '.join(ALIASES)}), "
                             "a hub id (owner/name) nor an existing folder")
    if allowed is not None and ref.family not in allowed:
        raise ModelLoadError(f"{name!r} is a {ref.family} model and cannot be used as the {role}")
    return ref


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in ("1", "true", "yes")


def local_folder(ref: ModelRef) -> Path:
    """A local folder holding the model: the folder itself, the cached snapshot, or a fresh download."""
    if ref.is_local:
        return Path(ref.source)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    fix = (f"download it once with `hf download {ref.source}` on a machine with network access, "
           "or pass a local folder")
    try:
        return Path(snapshot_download(ref.source, local_files_only=True,
                                      allow_patterns=_WEIGHT_PATTERNS, ignore_patterns=_SKIP_PATTERNS))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        pass
    if _offline():
        raise ModelLoadError(f"model {ref.source!r} is not in the local cache and HF_HUB_OFFLINE is set: {fix}")
    from huggingface_hub import HfApi

    try:  # one quick call decides: unknown model, gated, or no network
        HfApi().model_info(ref.source, timeout=3)
    except RepositoryNotFoundError:
        raise ModelLoadError(f"model {ref.source!r} does not exist on the Hugging Face hub (check the name) "
                             "and is not a local folder") from None
    except GatedRepoError:
        raise ModelLoadError(f"model {ref.source!r} is gated: accept its licence on huggingface.co and "
                             "log in (`hf auth login`), or pass a local folder") from None
    except Exception as error:  # noqa: BLE001 - any network failure gets the same advice
        raise ModelLoadError(f"model {ref.source!r} is not downloaded and the hub is unreachable "
                             f"({type(error).__name__}): {fix}") from None
    log.info("downloading %s (safetensors only)", ref.source)
    try:
        return Path(snapshot_download(ref.source, allow_patterns=_WEIGHT_PATTERNS, ignore_patterns=_SKIP_PATTERNS))
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(f"could not download {ref.source!r}: {error}") from None


# ---------------------------------------------------------------- the process-wide cache

T = TypeVar("T")
_cache: dict[tuple, Any] = {}
_cache_lock = threading.Lock()


def cached(key: tuple, build: Callable[[], T]) -> T:
    """Build a model once per process and key (e.g. (family, folder, device, dtype))."""
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    value = build()  # built outside the lock: loading can take long
    with _cache_lock:
        return _cache.setdefault(key, value)


def clear_cache() -> None:
    """Forget every loaded model (frees memory once nothing else refers to them)."""
    with _cache_lock:
        _cache.clear()


def load_error(ref: ModelRef, error: Exception) -> ModelLoadError:
    """Wrap a library's loading error into one line naming the model."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ModelLoadError(f"could not load {ref.family} model {ref.source!r}: {text[:300]}")
