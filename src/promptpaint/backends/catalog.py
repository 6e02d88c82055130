"""The model catalogue: every short name (alias) with its hub id, family, roles, download size,
gating and licence, and where each fact comes from.

Adding a model is one ``ModelEntry`` in ``CATALOGUE`` (its family must be in ``families.FAMILIES``).
Sizes are those of the files promptpaint fetches (``backends.fetch``), not of the whole repository:
``size`` in full precision, ``size_fp16`` with the fp16 variant (on GPUs) where the repository has
one. Sizes are from recorded file listings (``tests/backends/hub_listings.py``, which the tests
check them against) or, where marked ``approximate``, from the hub's pages and parameter counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptpaint.backends.families import FAMILIES

GB = 1_000_000_000
MB = 1_000_000


@dataclass(frozen=True)
class Licence:
    name: str
    #: "yes", "no", or "yes, with use restrictions" (OpenRAIL's and Meta's lists of forbidden uses)
    commercial: str
    url: str


APACHE = Licence("Apache-2.0", "yes", "https://www.apache.org/licenses/LICENSE-2.0")
MIT = Licence("MIT", "yes", "https://opensource.org/license/mit")
OPENRAIL_M = Licence("CreativeML OpenRAIL-M", "yes, with use restrictions",
                     "https://huggingface.co/spaces/CompVis/stable-diffusion-license")
OPENRAIL_PP_M = Licence("CreativeML OpenRAIL++-M", "yes, with use restrictions",
                        "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/LICENSE.md")
FLUX_DEV = Licence("FLUX.1 [dev] Non-Commercial License", "no",
                   "https://huggingface.co/black-forest-labs/FLUX.1-Fill-dev/blob/main/LICENSE.md")
SAM_LICENSE = Licence("SAM License", "yes, with use restrictions",
                      "https://huggingface.co/facebook/sam3/blob/main/LICENSE")


@dataclass(frozen=True)
class ModelEntry:
    """One alias. ``source`` says where the facts (licence, gating, sizes) were read."""

    alias: str
    hub_id: str | None  # None: built in, nothing to download
    family: str
    size: int  # bytes promptpaint fetches, full precision
    licence: Licence
    source: str
    gated: bool = False
    size_fp16: int | None = None  # bytes with the fp16 variant, where the repository has one
    approximate: bool = False  # sizes estimated from the hub's pages, not from a recorded listing
    #: roles, when narrower than the family's (default: all of the family's roles)
    only_roles: tuple[str, ...] = ()
    #: the exact files to fetch, when the layout's rule would take too much (one LoRA of several)
    files: tuple[str, ...] = ()

    @property
    def roles(self) -> tuple[str, ...]:
        return self.only_roles or FAMILIES[self.family].roles

    @property
    def layout(self) -> str:
        return FAMILIES[self.family].layout


_CARD = "model card on huggingface.co ({}): licence tag and gating"

CATALOGUE: dict[str, ModelEntry] = {e.alias: e for e in (
    # Detectors
    ModelEntry("gdino-tiny", "IDEA-Research/grounding-dino-tiny", "grounding-dino", 690_061_128, APACHE,
               _CARD.format("IDEA-Research/grounding-dino-tiny") + "; sizes: recorded listing"),
    ModelEntry("gdino-base", "IDEA-Research/grounding-dino-base", "grounding-dino", 934_100_000, APACHE,
               _CARD.format("IDEA-Research/grounding-dino-base") + "; model.safetensors 933,400,872 B from "
               "peers' checksum-pinned download tables", approximate=True),
    ModelEntry("owlv2", "google/owlv2-base-patch16-ensemble", "owlv2", 623_617_190, APACHE,
               _CARD.format("google/owlv2-base-patch16-ensemble") + "; sizes: recorded listing"),
    # Segmenters
    ModelEntry("sam-b", "facebook/sam-vit-base", "sam", 375_049_084, APACHE,
               _CARD.format("facebook/sam-vit-base") + "; sizes: recorded listing"),
    ModelEntry("sam-l", "facebook/sam-vit-large", "sam", 1_250_000_000, APACHE,
               _CARD.format("facebook/sam-vit-large") + "; 312M parameters in fp32", approximate=True),
    ModelEntry("sam-h", "facebook/sam-vit-huge", "sam", 2_560_000_000, APACHE,
               _CARD.format("facebook/sam-vit-huge") + "; 641M parameters in fp32", approximate=True),
    ModelEntry("sam2-t", "facebook/sam2.1-hiera-tiny", "sam2", 156_000_000, APACHE,
               _CARD.format("facebook/sam2.1-hiera-tiny") + "; 38.9M parameters in fp32", approximate=True),
    ModelEntry("sam2-s", "facebook/sam2.1-hiera-small", "sam2", 185_000_000, APACHE,
               _CARD.format("facebook/sam2.1-hiera-small") + "; 46M parameters in fp32", approximate=True),
    ModelEntry("sam2-b", "facebook/sam2.1-hiera-base-plus", "sam2", 324_000_000, APACHE,
               _CARD.format("facebook/sam2.1-hiera-base-plus") + "; 80.8M parameters in fp32", approximate=True),
    ModelEntry("sam2-l", "facebook/sam2.1-hiera-large", "sam2", 898_000_000, APACHE,
               _CARD.format("facebook/sam2.1-hiera-large") + "; 224M parameters in fp32", approximate=True),
    ModelEntry("sam3", "facebook/sam3", "sam3", 3_450_000_000, SAM_LICENSE,
               _CARD.format("facebook/sam3") + " (gated; licence \"SAM License\" of 19 Nov 2025: commercial use "
               "allowed, military/ITAR and other listed uses forbidden); 848M parameters in fp32",
               gated=True, approximate=True),
    # Inpainters (also removers)
    ModelEntry("sd15", "stable-diffusion-v1-5/stable-diffusion-inpainting", "sd-inpaint", 4_266_664_604, OPENRAIL_M,
               _CARD.format("stable-diffusion-v1-5/stable-diffusion-inpainting") + "; sizes: recorded listing",
               size_fp16=2_134_213_550),
    ModelEntry("sdxl", "diffusers/stable-diffusion-xl-1.0-inpainting-0.1", "sdxl-inpaint", 13_878_787_138,
               OPENRAIL_PP_M, _CARD.format("diffusers/stable-diffusion-xl-1.0-inpainting-0.1")
               + "; sizes: recorded listing", size_fp16=6_941_038_108),
    ModelEntry("flux-fill", "black-forest-labs/FLUX.1-Fill-dev", "flux-fill", 33_746_242_749, FLUX_DEV,
               _CARD.format("black-forest-labs/FLUX.1-Fill-dev") + " (gated: accept the licence, then log in); "
               "sizes: recorded listing (bf16 weights, no fp16 variant)", gated=True),
    # Removers
    ModelEntry("lama", "g-ronimo/lama", "lama", 208_000_000, APACHE,
               _CARD.format("g-ronimo/lama") + " (apache-2.0; LaMa itself: advimman/lama, Apache-2.0); "
               "sizes: recorded listing (lama.onnx approximate)"),
    ModelEntry("telea", None, "telea", 0, APACHE, "OpenCV's cv2.inpaint (INPAINT_TELEA), part of "
               "opencv-python-headless (Apache-2.0): nothing to download"),
    # Fast mode's distillation LoRAs (see backends/fast.py for why each one)
    ModelEntry("lcm-sd15", "latent-consistency/lcm-lora-sdv1-5", "lora", 135_000_000, OPENRAIL_PP_M,
               _CARD.format("latent-consistency/lcm-lora-sdv1-5") + "; 67.5M parameters in fp16 (its card)",
               approximate=True),
    ModelEntry("lcm-sdxl", "latent-consistency/lcm-lora-sdxl", "lora", 394_000_000, OPENRAIL_PP_M,
               _CARD.format("latent-consistency/lcm-lora-sdxl") + "; 197M parameters in fp16 (its card)",
               approximate=True),
    ModelEntry("tcd-sdxl", "h1t/TCD-SDXL-LoRA", "lora", 394_000_000, OPENRAIL_PP_M,
               _CARD.format("h1t/TCD-SDXL-LoRA") + "; the LCM-LoRA SDXL's shape (rank 64) in fp16", approximate=True),
    ModelEntry("flux-turbo", "alimama-creative/FLUX.1-Turbo-Alpha", "lora", 694_000_000, FLUX_DEV,
               _CARD.format("alimama-creative/FLUX.1-Turbo-Alpha") + " (flux-1-dev-non-commercial-license); "
               "its 694 MB LoRA file from the hub's file page", approximate=True),
    # Live-preview decoders (tiny autoencoders, madebyollin's TAESD family)
    ModelEntry("taesd", "madebyollin/taesd", "taesd", 9_800_000, MIT,
               _CARD.format("madebyollin/taesd") + "; about 2.4M parameters in fp32", approximate=True),
    ModelEntry("taesdxl", "madebyollin/taesdxl", "taesd", 9_800_000, MIT,
               _CARD.format("madebyollin/taesdxl") + "; about 2.4M parameters in fp32", approximate=True),
    ModelEntry("taef1", "madebyollin/taef1", "taesd", 9_900_000, MIT,
               _CARD.format("madebyollin/taef1") + "; about 2.4M parameters in fp32 (16 latent channels)",
               approximate=True),
    # Matting
    ModelEntry("vitmatte", "hustvl/vitmatte-small-composition-1k", "vitmatte", 103_300_000, APACHE,
               _CARD.format("hustvl/vitmatte-small-composition-1k") + "; 25.8M parameters in fp32 (the "
               "published config built with random weights: model.safetensors 103,294,572 B)", approximate=True),
)}


def aliases_for(role: str) -> list[str]:
    """The aliases that can fill ``role``, in catalogue order."""
    return [alias for alias, e in CATALOGUE.items() if role in e.roles]
