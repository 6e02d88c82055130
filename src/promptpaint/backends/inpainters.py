"""Generative inpainters through diffusers: SD 1.5 / SDXL inpainting and FLUX.1 Fill.

Each backend repaints images that the pipeline has already cropped and resized to a size the
model likes (``working_size`` pixels on a side, multiples of ``multiple``); it never sees the
whole photo squashed. One loaded pipeline per process serves replace, remove and outpaint, in
plain and fast mode (:meth:`DiffusersInpainter.fast`, see :mod:`.fast`), and can show live
previews (see :mod:`.previews`).
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any

import numpy as np

from promptpaint.backends.fetch import load_kwargs
from promptpaint.backends.protocols import Inpainter
from promptpaint.backends.registry import ModelRef, cached, first_line, load_error, local_folder
from promptpaint.backends.runtime import enable_fast_math, pick_dtype
from promptpaint.errors import ModelLoadError, UnsupportedOperationError

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
    lora: str | None = None  # fast mode's distillation LoRA (hub id or path); None: plain sampling
    has_fast_mode = True  # see fast()
    shows_previews = True
    caches_features = True  # the UNet's deep features, through DeepCache's helper (see _feature_cache)

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
        self.shipped_scheduler = pipe.scheduler  # fast modes derive their samplers from its configuration
        self._configure(pipe)
        self._scheduler = pipe.scheduler
        self.scheduler = type(pipe.scheduler).__name__  # the sampler's name, for the recipe
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
        self.compiled = compile
        if compile:
            self._compile(pipe, torch.compile(self._denoiser(pipe), mode="max-autotune-no-cudagraphs", fullgraph=False))
        self.pipe = pipe
        self.multiple, self.working_size = self._sizes(pipe)
        # The pipeline object, its scheduler and its adapters are state that plain and fast calls
        # share: one call at a time.
        self._lock = threading.RLock()
        self._adapters: dict[str, str] = {}  # LoRA location -> adapter name
        self._fast: dict[str, FastInpainter] = {}
        self._preview_decoders: dict[str | None, Any] = {}
        self._preview_name: str | None = None

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

    def fast(self, lora: str | None = None) -> FastInpainter:
        """This model in fast mode (its default distillation LoRA, or ``lora``), sharing its weights."""
        from promptpaint.backends.fast import fast_mode

        mode = fast_mode(self.family, lora)
        with self._lock:
            if mode.lora not in self._fast:
                self._fast[mode.lora] = FastInpainter(self, mode)
            return self._fast[mode.lora]

    def _load_adapter(self, location: str, lora_id: str) -> str:
        """Load a LoRA once as a named adapter of the denoiser (switched off until a fast call)."""
        with self._lock:
            if location not in self._adapters:
                name = f"fast{len(self._adapters)}"
                try:
                    self.pipe.load_lora_weights(location, adapter_name=name)
                except Exception as error:  # noqa: BLE001
                    raise ModelLoadError(f"could not load LoRA {lora_id!r} into {self.family} model "
                                         f"{self.model_id!r}: {first_line(error)}") from error
                self.pipe.disable_lora()
                self._adapters[location] = name
            return self._adapters[location]

    def use_preview_decoder(self, name: str | None) -> None:
        """Decode live previews with ``name`` (a tiny autoencoder, or ``"linear"``; None: the default
        choice). Loaded now, so that a missing model fails before any generation."""
        self.preview_decoder(name)
        self._preview_name = name

    def preview_decoder(self, name: str | None = None):
        """The decoder of live previews (see :func:`.previews.load_previewer`), loaded once; None
        when no decoder fits this model's latents."""
        from promptpaint.backends.previews import load_previewer

        with self._lock:
            if name not in self._preview_decoders:
                channels = int(self.pipe.vae.config.latent_channels)
                self._preview_decoders[name] = load_previewer(self.family, channels, self.device, self.dtype, name)
            return self._preview_decoders[name]

    # -- generation
    def inpaint(self, images, mask, *, prompt, negative_prompt, seeds, steps=None, guidance=None, strength=None,
                progress=None, previews=0, feature_cache=0):
        return self._generate(self, None, images, mask, prompt=prompt, negative_prompt=negative_prompt, seeds=seeds,
                              steps=steps, guidance=guidance, strength=strength, progress=progress, previews=previews,
                              feature_cache=feature_cache)

    def _generate(self, mode, adapter: str | None, images, mask, *, prompt, negative_prompt, seeds, steps, guidance,
                  strength, progress, previews, feature_cache=0, extra: dict | None = None):
        """One pipeline call with ``mode``'s sampler and defaults, and ``adapter`` on (None: plain)."""
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
        steps = steps or mode.default_steps
        guidance = mode.default_guidance if guidance is None else guidance
        strength = mode.default_strength if strength is None else strength
        if any(negatives) and guidance <= 1:
            raise UnsupportedOperationError(f"a negative prompt needs --guidance above 1 (this edit samples at "
                                            f"{guidance:g}, without guidance); raise it or drop --negative-prompt")
        kwargs = dict(
            prompt=prompts,
            image=[Image.fromarray(im) for im in images],
            mask_image=[Image.fromarray(m.astype(np.uint8) * 255) for m in masks],
            height=h, width=w,
            num_inference_steps=steps,
            guidance_scale=guidance,
            strength=strength,
            generator=[torch.Generator("cpu").manual_seed(int(s)) for s in seeds],
            output_type="np",
            **(extra or {}),
        )
        if any(negatives):
            # Only when given: SDXL encodes no negative prompt as zeros (force_zeros_for_empty_prompt),
            # which an empty string is not.
            kwargs["negative_prompt"] = negatives
        if progress is not None:
            kwargs["callback_on_step_end"] = self._on_step(progress, steps, strength, previews, (w, h))
        tiled = max(h, w) > VAE_TILING_SIDE
        with self._lock:
            self.pipe.scheduler = mode._scheduler
            if adapter is None:
                if self._adapters:
                    self.pipe.disable_lora()
            else:
                self.pipe.enable_lora()
                self.pipe.set_adapters([adapter])
            if tiled:
                self.pipe.vae.enable_tiling()
            try:
                with torch.inference_mode(), self._feature_cache(feature_cache):
                    out = self.pipe(**kwargs).images
            finally:
                if tiled:
                    self.pipe.vae.disable_tiling()
        return [np.clip(np.rint(np.asarray(im) * 255), 0, 255).astype(np.uint8) for im in out]

    @contextmanager
    def _feature_cache(self, interval: int):
        """DeepCache for one call: the whole UNet runs every ``interval``-th step, the others reuse its
        deep features and run only its outermost blocks (branch 0, as DeepCache's README shows for
        Stable Diffusion). Its helper wraps the UNet's blocks for this call only, so the next call,
        whatever its size, starts clean."""
        if not interval:
            yield
            return
        if not self.caches_features:
            raise UnsupportedOperationError(f"{self.model_id} has no UNet: --deep-cache works with SD 1.5 and SDXL")
        if self.compiled:
            raise UnsupportedOperationError("--deep-cache does not combine with --compile: choose one")
        from DeepCache import DeepCacheSDHelper

        helper = DeepCacheSDHelper(pipe=self.pipe)
        helper.set_params(cache_interval=interval, cache_branch_id=0)
        helper.enable()
        try:
            yield
        finally:
            helper.disable()

    def _on_step(self, progress, steps: int, strength: float, previews: int, size: tuple[int, int]):
        """diffusers' step-end callback: progress every step; with ``previews``, a picture of the
        latents every that many steps and at the last (a caller that did not ask gets none)."""
        total = max(1, min(steps, int(steps * strength)))
        decode = self.preview_decoder(self._preview_name) if previews > 0 else None

        def on_step(pipe, i, t, callback_kwargs):
            step = i + 1
            if decode is not None and (step % previews == 0 or step == total):
                progress(step, total, preview=decode(self._spatial(callback_kwargs["latents"], size), size))
            else:
                progress(step, total)
            return callback_kwargs

        return on_step

    def _spatial(self, latents, size: tuple[int, int]):
        """The callback's latents as (batch, channels, h, w)."""
        return latents


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
    caches_features = False  # a transformer: DeepCache's helper wraps UNet blocks
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

    def _spatial(self, latents, size: tuple[int, int]):
        """FLUX packs its latents in 2x2 patches, one token per patch: unpack them."""
        w, h = size
        return self.pipe._unpack_latents(latents, h, w, self.pipe.vae_scale_factor)


#: family -> backend class (each declares its defaults as class attributes, readable unloaded)
INPAINTERS: dict[str, type[DiffusersInpainter]] = {
    cls.family: cls for cls in (Sd15Inpainter, SdxlInpainter, FluxFillInpainter)}


class FastInpainter:
    """A loaded :class:`DiffusersInpainter` in fast mode: its distillation LoRA on, the LoRA's
    scheduler, few steps, low guidance. Shares every weight with the plain model."""

    needs_prompt = True
    upscale = True
    batches = True
    has_fast_mode = False  # it is the fast mode
    shows_previews = True

    def __init__(self, base: DiffusersInpainter, mode):
        from promptpaint.backends.fast import lora_location

        self.base, self.mode = base, mode
        self.lora, location = lora_location(mode)  # fails fast when the LoRA is missing
        # What the loaded model is stays the plain model's; only the sampling differs.
        for name in ("family", "model_id", "device", "dtype", "pipe", "multiple", "working_size", "min_context",
                     "takes_negative_prompt", "fp16_safe", "caches_features"):
            setattr(self, name, getattr(base, name))
        self.default_steps, self.default_guidance, self.default_strength = mode.steps, mode.guidance, mode.strength
        if mode.scheduler is None:
            scheduler = type(base.shipped_scheduler).from_config(base.shipped_scheduler.config)
        else:
            import diffusers

            scheduler = getattr(diffusers, mode.scheduler).from_config(base.shipped_scheduler.config)
        self._scheduler = scheduler
        self.scheduler = type(scheduler).__name__
        self.adapter = base._load_adapter(location, self.lora)

    def use_preview_decoder(self, name: str | None) -> None:
        self.base.use_preview_decoder(name)

    def preview_decoder(self, name: str | None = None):
        return self.base.preview_decoder(name)

    def inpaint(self, images, mask, *, prompt, negative_prompt, seeds, steps=None, guidance=None, strength=None,
                progress=None, previews=0, feature_cache=0):
        return self.base._generate(self, self.adapter, images, mask, prompt=prompt, negative_prompt=negative_prompt,
                                   seeds=seeds, steps=steps, guidance=guidance, strength=strength, progress=progress,
                                   previews=previews, feature_cache=feature_cache, extra=self.mode.call_kwargs)


def load_inpainter(ref: ModelRef, device: str, dtype: str, offload: bool = False, compile: bool = False,
                   fast: bool = False, lora: str | None = None) -> Inpainter:
    """The model, loaded once per process (device, dtype, offload and compile settings); with
    ``fast``, the same weights in fast mode (``lora``: another distillation LoRA than the default)."""
    plain = cached(("inpainter", ref.source, device, dtype, offload, compile),
                   lambda: INPAINTERS[ref.family](ref, device, dtype, offload, compile))
    return plain.fast(lora) if fast else plain
