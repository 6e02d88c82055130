"""Generative inpainters through diffusers: SD 1.5 / SDXL inpainting and FLUX.1 Fill.

Each backend repaints images that the pipeline has already cropped and resized to a size the
model likes (``working_size`` pixels on a side, multiples of ``multiple``); it never sees the
whole photo squashed. One loaded pipeline per process serves replace, remove and outpaint.
"""

from __future__ import annotations

import logging

import numpy as np

from promptpaint.backends.fetch import load_kwargs
from promptpaint.backends.protocols import Inpainter
from promptpaint.backends.registry import ModelRef, cached, load_error, local_folder
from promptpaint.backends.runtime import enable_fast_math, pick_dtype
from promptpaint.errors import UnsupportedOperationError

log = logging.getLogger(__name__)

# Above this many pixels per side, the VAE decodes in tiles to bound memory.
VAE_TILING_SIDE = 1280


class DiffusersInpainter:
    """What the diffusers inpainting families share; each family is a subclass that declares its
    model card's defaults and how its pipeline loads."""

    family: str
    default_steps: int
    default_guidance: float
    default_strength: float
    fp16_safe = True  # False: activations overflow float16 (see runtime.pick_dtype)
    takes_negative_prompt = True
    needs_prompt = True
    upscale = True
    min_context = 0  # small windows are enlarged to the working size instead
    batches = True  # mask, prompt and negative_prompt may also be lists, one per image

    def __init__(self, ref: ModelRef, device: str, dtype: str, offload: bool = False, compile: bool = False):
        folder = local_folder(ref)  # fails fast, before the slow library imports
        import torch

        self.ref = ref
        self.model_id = ref.id
        self.device = device
        self.dtype = pick_dtype(dtype, device, generative=True, fp16_safe=self.fp16_safe)
        enable_fast_math(device)
        try:
            from diffusers.utils import logging as diffusers_logging

            diffusers_logging.disable_progress_bar()  # our own bar shows the denoising steps
            # fp16 files where those are the ones fetched; the safety checker never (see backends.fetch)
            extra = load_kwargs(folder, half=self.dtype != torch.float32)
            pipe = self._pipeline_class().from_pretrained(folder, dtype=self.dtype, use_safetensors=True, **extra)
        except Exception as error:  # noqa: BLE001
            raise load_error(ref, error) from error
        self._configure(pipe)
        if getattr(pipe, "safety_checker", None) is not None:
            pipe.safety_checker = None  # an editing tool: the user owns the content
        pipe.set_progress_bar_config(disable=True)
        if device == "cuda":
            self._denoiser(pipe).to(memory_format=torch.channels_last)
        # The VAE's convolutions at full resolution are faster channels-last on CPUs too (measured
        # on a 2-core AMD EPYC at 512x512: encode -13%, decode -11% CPU time; the UNet gains nothing).
        pipe.vae.to(memory_format=torch.channels_last)
        if offload and device == "cuda":
            pipe.enable_model_cpu_offload()
        else:
            pipe.to(device)
        if compile:
            self._compile(pipe, torch.compile(self._denoiser(pipe), mode="max-autotune-no-cudagraphs", fullgraph=False))
        self.pipe = pipe
        self.multiple, self.working_size = self._sizes(pipe)

    # -- what each family says about itself
    def _pipeline_class(self):
        from diffusers import AutoPipelineForInpainting

        return AutoPipelineForInpainting

    def _configure(self, pipe) -> None:
        """DPM++ 2M (Karras) reaches SD's 50-step PNDM quality in about 25 steps."""
        from diffusers import DPMSolverMultistepScheduler

        pipe.scheduler = DPMSolverMultistepScheduler.from_config(
            pipe.scheduler.config, use_karras_sigmas=True, algorithm_type="dpmsolver++")

    @staticmethod
    def _denoiser(pipe):
        return pipe.unet

    @staticmethod
    def _compile(pipe, compiled) -> None:
        pipe.unet = compiled

    @staticmethod
    def _sizes(pipe) -> tuple[int, int]:
        """(multiple, working size) in pixels."""
        return pipe.vae_scale_factor, int(pipe.unet.config.sample_size) * pipe.vae_scale_factor

    # -- generation
    def inpaint(self, images, mask, *, prompt, negative_prompt, seeds, steps=None, guidance=None, strength=None,
                progress=None):
        import torch
        from PIL import Image

        masks = mask if isinstance(mask, list) else [mask] * len(images)
        prompts = prompt if isinstance(prompt, list) else [prompt] * len(images)
        negatives = negative_prompt if isinstance(negative_prompt, list) else [negative_prompt] * len(images)
        h, w = masks[0].shape
        if w % self.multiple or h % self.multiple:
            raise ValueError(f"inpaint size {w}x{h} is not a multiple of {self.multiple}")
        if any(negatives) and not self.takes_negative_prompt:
            raise UnsupportedOperationError(f"{self.model_id} takes no negative prompt; drop --negative-prompt")
        steps = steps or self.default_steps
        strength = self.default_strength if strength is None else strength
        kwargs = dict(
            prompt=prompts,
            image=[Image.fromarray(im) for im in images],
            mask_image=[Image.fromarray(m.astype(np.uint8) * 255) for m in masks],
            height=h, width=w,
            num_inference_steps=steps,
            guidance_scale=self.default_guidance if guidance is None else guidance,
            strength=strength,
            generator=[torch.Generator("cpu").manual_seed(int(s)) for s in seeds],
            output_type="np",
        )
        if any(negatives):
            # Only when given: SDXL encodes no negative prompt as zeros (force_zeros_for_empty_prompt),
            # which an empty string is not.
            kwargs["negative_prompt"] = negatives
        if progress is not None:
            total = max(1, min(steps, int(steps * strength)))

            def on_step(pipe, i, t, callback_kwargs):
                progress(i + 1, total)
                return callback_kwargs

            kwargs["callback_on_step_end"] = on_step
        tiled = max(h, w) > VAE_TILING_SIDE
        if tiled:
            self.pipe.vae.enable_tiling()
        try:
            with torch.inference_mode():
                out = self.pipe(**kwargs).images
        finally:
            if tiled:
                self.pipe.vae.disable_tiling()
        return [np.clip(np.rint(np.asarray(im) * 255), 0, 255).astype(np.uint8) for im in out]


class Sd15Inpainter(DiffusersInpainter):
    """stable-diffusion-v1-5/stable-diffusion-inpainting and its fine-tunes."""

    family = "sd-inpaint"
    # The card calls the pipeline with its defaults (50 PNDM steps, guidance 7.5, strength 1.0: the
    # inpainting UNet is trained to fill from pure noise); 25 DPM++ 2M Karras steps match 50 PNDM.
    default_steps = 25
    default_guidance = 7.5
    default_strength = 1.0


class SdxlInpainter(DiffusersInpainter):
    """diffusers/stable-diffusion-xl-1.0-inpainting-0.1."""

    family = "sdxl-inpaint"
    # Its model card: guidance_scale=8.0, num_inference_steps=20 ("15 to 30 work well"), and
    # strength=0.99: the pipeline's own default is 0.9999 and at 1.0 the result loses sharpness.
    default_steps = 20
    default_guidance = 8.0
    default_strength = 0.99


class FluxFillInpainter(DiffusersInpainter):
    """black-forest-labs/FLUX.1-Fill-dev (guidance-distilled: no negative prompt)."""

    family = "flux-fill"
    # The card's example: guidance_scale=30, num_inference_steps=50; 28 is FLUX.1 [dev]'s own
    # default step count (FluxPipeline) and gives the card's quality at about half the time.
    # Fill repaints from pure noise (strength 1.0, the pipeline's default).
    default_steps = 28
    default_guidance = 30.0
    default_strength = 1.0
    fp16_safe = False  # FLUX activations overflow float16: black images
    takes_negative_prompt = False

    def _pipeline_class(self):
        from diffusers import FluxFillPipeline  # AutoPipelineForInpainting does not map FluxFill

        return FluxFillPipeline

    def _configure(self, pipe) -> None:
        """Its flow-matching scheduler as shipped."""

    @staticmethod
    def _denoiser(pipe):
        return pipe.transformer

    @staticmethod
    def _compile(pipe, compiled) -> None:
        pipe.transformer = compiled

    @staticmethod
    def _sizes(pipe) -> tuple[int, int]:
        # latents are packed in 2x2 patches
        return pipe.vae_scale_factor * 2, pipe.default_sample_size * pipe.vae_scale_factor


#: family -> backend class (each declares its defaults as class attributes, readable unloaded)
INPAINTERS: dict[str, type[DiffusersInpainter]] = {
    cls.family: cls for cls in (Sd15Inpainter, SdxlInpainter, FluxFillInpainter)}


def load_inpainter(ref: ModelRef, device: str, dtype: str, offload: bool = False, compile: bool = False) -> Inpainter:
    return cached(("inpainter", ref.source, device, dtype, offload, compile),
                  lambda: INPAINTERS[ref.family](ref, device, dtype, offload, compile))
