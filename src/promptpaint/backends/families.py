"""Model families: what kind of model a folder holds, read from its files (never guessed from its name).

A family decides which backend class loads the model, which roles it can fill, and which of a hub
repository's files promptpaint reads (its ``layout``, see ``backends.fetch``). A family is known
from:

- ``model_index.json`` ``_class_name`` (a diffusers pipeline folder);
- ``config.json`` ``architectures`` (checked first: the most specific), ``model_type`` (transformers),
  or ``_class_name`` (a single diffusers model, e.g. a tiny autoencoder);
- an ``.onnx`` file (LaMa is promptpaint's only ONNX family);
- a LoRA file: a root ``*.safetensors`` whose tensor names carry ``lora`` (read from its header).

Adding a family means one entry in ``FAMILIES`` (and a backend module that loads it).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Every role a model can fill; option fields of the same name pick the model for a role.
ROLES = ("detector", "segmenter", "inpainter", "remover", "matting", "preview-vae", "lora")


@dataclass(frozen=True)
class Family:
    """One kind of model: its roles, its file layout and the config values that identify it."""

    name: str
    roles: tuple[str, ...]
    #: how its files are laid out (decides what is fetched): "transformers" (one folder with
    #: config.json and model*.safetensors), "diffusers" (model_index.json and component folders),
    #: "diffusers-model" (config.json and diffusion_pytorch_model*.safetensors), "onnx", "lora",
    #: or "builtin" (no files at all)
    layout: str
    architectures: tuple[str, ...] = ()  # config.json "architectures"
    model_types: tuple[str, ...] = ()  # config.json "model_type"
    class_names: tuple[str, ...] = ()  # model_index.json / config.json "_class_name"


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("grounding-dino", ("detector",), "transformers",
           ("GroundingDinoForObjectDetection", "MMGroundingDinoForObjectDetection"),
           ("grounding-dino", "mm-grounding-dino")),
    Family("owlv2", ("detector",), "transformers", ("Owlv2ForObjectDetection",), ("owlv2",)),
    Family("sam", ("segmenter",), "transformers", ("SamModel",), ("sam",)),
    Family("sam2", ("segmenter",), "transformers", ("Sam2Model",), ("sam2",)),
    Family("sam3", ("detector", "segmenter"), "transformers", ("Sam3Model", "Sam3VideoModel"), ("sam3", "sam3_video")),
    Family("sd-inpaint", ("inpainter", "remover"), "diffusers",
           class_names=("StableDiffusionInpaintPipeline", "StableDiffusionPipeline")),
    Family("sdxl-inpaint", ("inpainter", "remover"), "diffusers",
           class_names=("StableDiffusionXLInpaintPipeline", "StableDiffusionXLPipeline")),
    Family("flux-fill", ("inpainter", "remover"), "diffusers", class_names=("FluxFillPipeline",)),
    Family("lama", ("remover",), "onnx"),
    Family("telea", ("remover",), "builtin"),
    Family("vitmatte", ("matting",), "transformers", ("VitMatteForImageMatting",), ("vitmatte",)),
    Family("taesd", ("preview-vae",), "diffusers-model", class_names=("AutoencoderTiny",)),
    Family("lora", ("lora",), "lora"),
)}


def families_for(role: str) -> tuple[str, ...]:
    """The families that can fill ``role`` (e.g. "remover": lama, telea and the inpainters)."""
    return tuple(name for name, family in FAMILIES.items() if role in family.roles)


class UnknownFamily(ValueError):
    """The files were read but name no family promptpaint supports; the message says what they name."""


def family_from_model_index(model_index: dict[str, Any]) -> str:
    """The family of a diffusers pipeline from its ``model_index.json``."""
    value = model_index.get("_class_name")
    for family in FAMILIES.values():
        if value in family.class_names:
            return family.name
    raise UnknownFamily(f"a diffusers {value or 'pipeline without _class_name'}")


def family_from_config(config: dict[str, Any]) -> str:
    """The family of a transformers (or single diffusers) model from its ``config.json``."""
    architectures = config.get("architectures") or []
    for family in FAMILIES.values():
        if any(a in family.architectures for a in architectures):
            return family.name
    model_type, class_name = config.get("model_type"), config.get("_class_name")
    for family in FAMILIES.values():
        if model_type in family.model_types or (class_name and class_name in family.class_names):
            return family.name
    named = ", ".join(architectures) or model_type or class_name or "model of no declared type"
    raise UnknownFamily(f"a {named}")


def is_lora_file(path: Path) -> bool:
    """Whether a safetensors file holds LoRA weights (tensor names with "lora"), read from its header
    only (the first 8 bytes give the JSON header's length)."""
    try:
        with open(path, "rb") as file:
            (length,) = struct.unpack("<Q", file.read(8))
            if length > 100_000_000:
                return False
            header = json.loads(file.read(length))
    except (OSError, ValueError, struct.error):
        return False
    return any("lora" in key.lower() for key in header if key != "__metadata__")


def family_of_folder(folder: Path) -> str | None:
    """The family of a local model folder, or None when it holds no model file promptpaint knows
    (raises :class:`UnknownFamily` when it holds a model of a kind promptpaint does not support)."""
    for name, read in (("model_index.json", family_from_model_index), ("config.json", family_from_config)):
        file = folder / name
        if file.is_file():
            try:
                data = json.loads(file.read_text())
            except (OSError, ValueError) as error:
                raise UnknownFamily(f"an unreadable {name} ({type(error).__name__})") from None
            return read(data if isinstance(data, dict) else {})
    if any(folder.glob("*.onnx")):
        return "lama"
    if any(is_lora_file(f) for f in folder.glob("*.safetensors")):
        return "lora"
    return None
