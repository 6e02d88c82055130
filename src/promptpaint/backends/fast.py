"""Fast mode: few-step sampling through a distillation LoRA, with the scheduler, steps and guidance
its authors and diffusers' documentation show for inpainting.

- SD 1.5 inpainting: **LCM-LoRA** (``latent-consistency/lcm-lora-sdv1-5``). diffusers' LCM guide shows
  exactly this pair (stable-diffusion-v1-5/stable-diffusion-inpainting + lcm-lora-sdv1-5, LCMScheduler,
  4 steps); the LoRA's card (its authors) asks for guidance disabled or 1-2: 1.0 here, which also
  halves the UNet work (no classifier-free guidance batch). TCD's and Hyper-SD's SD 1.5 LoRAs are
  only shown for text-to-image (and ControlNet).
- SDXL inpainting: **TCD-LoRA** (``h1t/TCD-SDXL-LoRA``). diffusers' TCD guide has an inpainting example
  with diffusers/stable-diffusion-xl-1.0-inpainting-0.1: TCDScheduler, 8 steps, guidance 0, eta 0.3,
  strength 0.99 ("make sure to use strength below 1.0"). LCM-LoRA's SDXL guide shows no inpainting.
- FLUX.1 Fill: **FLUX.1-Turbo-Alpha** (``alimama-creative/FLUX.1-Turbo-Alpha``), trained on FLUX.1-dev;
  diffusers' pull request #10259 (support for loading FLUX.1-dev LoRAs into Fill) shows it with
  FluxFillPipeline at 8 steps and Fill's guidance 30, with Fill's own flow-matching scheduler.

The LoRA is loaded once into the already loaded model as a named adapter (no second copy of the base
weights) and switched on for fast calls only; plain calls run with it off, which computes exactly
the base model (see docs/benchmarks.md for why an adapter rather than fused weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from promptpaint.backends.registry import ALIASES, LORA_FAMILIES, local_folder, resolve
from promptpaint.errors import InvalidOptionError, UnsupportedOperationError


@dataclass(frozen=True)
class FastMode:
    """How to sample with one distillation LoRA."""

    lora: str  # alias, hub id, folder or .safetensors file
    families: tuple[str, ...]  # the base models it was distilled from
    scheduler: str | None  # diffusers scheduler class; None keeps the model's own
    steps: int
    guidance: float
    strength: float = 1.0  # default strength when none is given
    call_kwargs: dict = field(default_factory=dict)  # extra pipeline arguments (TCD's eta)


#: The published LoRAs fast mode knows, by alias.
FAST_LORAS: dict[str, FastMode] = {
    "lcm-sd15": FastMode("lcm-sd15", ("sd-inpaint",), "LCMScheduler", steps=4, guidance=1.0),
    # The LCM authors' SDXL LoRA, for users who prefer it to TCD (their card: 4-8 steps, guidance 1-2).
    "lcm-sdxl": FastMode("lcm-sdxl", ("sdxl-inpaint",), "LCMScheduler", steps=4, guidance=1.0),
    "tcd-sdxl": FastMode("tcd-sdxl", ("sdxl-inpaint",), "TCDScheduler", steps=8, guidance=0.0, strength=0.99,
                         call_kwargs={"eta": 0.3}),
    "flux-turbo": FastMode("flux-turbo", ("flux-fill",), None, steps=8, guidance=30.0),
}
#: Which LoRA fast mode uses for each family unless told otherwise.
FAST_DEFAULTS = {"sd-inpaint": "lcm-sd15", "sdxl-inpaint": "tcd-sdxl", "flux-fill": "flux-turbo"}


def fast_mode(family: str, lora: str | None = None) -> FastMode:
    """The fast mode for a model family: its default LoRA, a known alias, or a LoRA of one's own
    (a folder, file or hub id, e.g. a local copy of the default one) sampled as the default is."""
    if family not in FAST_DEFAULTS:
        raise UnsupportedOperationError(f"fast mode is not available for {family} models")
    if lora is None:
        return FAST_LORAS[FAST_DEFAULTS[family]]
    # A recipe records the hub id: it stands for its alias (same scheduler, steps and guidance).
    lora = next((alias for alias in FAST_LORAS if ALIASES[alias][0] == lora), lora)
    if lora in FAST_LORAS:
        mode = FAST_LORAS[lora]
        if family not in mode.families:
            raise InvalidOptionError(f"the {lora} LoRA is for {', '.join(mode.families)} models, not {family}; "
                                     f"use {FAST_DEFAULTS[family]}")
        return mode
    default = FAST_LORAS[FAST_DEFAULTS[family]]
    return FastMode(lora, default.families, default.scheduler, default.steps, default.guidance, default.strength,
                    dict(default.call_kwargs))


def lora_file(mode: FastMode) -> str | None:
    """The LoRA's path when it is given as a local ``.safetensors`` file; None for an alias, hub id
    or folder (those go through the registry like every model)."""
    path = Path(mode.lora).expanduser()
    if not path.is_file():
        return None
    if path.suffix != ".safetensors":
        raise InvalidOptionError(f"LoRA file {path} is not a .safetensors file (pickles are never loaded)")
    return str(path.resolve())


def lora_location(mode: FastMode) -> tuple[str, str]:
    """(what to record, what to hand ``load_lora_weights``): the hub id or path, and the local
    folder or file. A missing LoRA fails here, in about a second, with what to do."""
    file = lora_file(mode)
    if file is not None:
        return file, file
    ref = resolve(mode.lora, LORA_FAMILIES, "lora")
    return ref.id, str(local_folder(ref))
