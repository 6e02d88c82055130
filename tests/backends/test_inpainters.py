"""The diffusion inpainters: each family's model-card defaults and dtype rules, and reference
equivalence: one window repainted by our backend equals a direct call of the diffusers pipeline
with the same crop, mask, prompt, seed and steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from promptpaint.backends.inpainters import (INPAINTERS, FluxFillInpainter, Sd15Inpainter, SdxlInpainter,
                                             load_inpainter)
from promptpaint.backends.registry import resolve
from promptpaint.errors import InvalidOptionError, UnsupportedOperationError

SIDE = 64  # the SD kits' working size; a multiple of FLUX's 4 too


@pytest.mark.parametrize(("cls", "steps", "guidance", "strength"), [
    (Sd15Inpainter, 25, 7.5, 1.0),
    (SdxlInpainter, 20, 8.0, 0.99),  # its card: 1.0 loses sharpness, the pipeline's 0.9999 too
    (FluxFillInpainter, 28, 30.0, 1.0),
])
def test_each_family_declares_its_model_cards_defaults(cls, steps, guidance, strength):
    assert (cls.default_steps, cls.default_guidance, cls.default_strength) == (steps, guidance, strength)
    assert INPAINTERS[cls.family] is cls


def test_flux_is_never_loaded_in_float16(tiny):
    """Refused before any weight loads (its activations overflow float16: black images)."""
    with pytest.raises(InvalidOptionError, match="FLUX overflows in float16"):
        FluxFillInpainter(resolve(str(tiny["flux-fill"])), "cuda", "float16")
    assert not FluxFillInpainter.fp16_safe and Sd15Inpainter.fp16_safe and SdxlInpainter.fp16_safe


def test_flux_takes_no_negative_prompt(tiny):
    flux = load_inpainter(resolve(str(tiny["flux-fill"])), "cpu", "auto")
    crop, mask = _window(np.random.default_rng(0))
    with pytest.raises(UnsupportedOperationError, match="takes no negative prompt"):
        flux.inpaint([crop], mask, prompt="a cat", negative_prompt="blurry", seeds=[0], steps=1)


# ------------------------------------------------------------------ reference equivalence

def _window(rng) -> tuple[np.ndarray, np.ndarray]:
    crop = rng.integers(0, 256, (SIDE, SIDE, 3), np.uint8)
    mask = np.zeros((SIDE, SIDE), bool)
    mask[16:44, 12:40] = True
    return crop, mask


def _documented_pipeline(family: str, folder):
    """The pipeline as diffusers documents loading it, configured as our backend configures it
    through diffusers' documented knobs: the VAE in channels-last memory format (a speed-up that
    changes float summation order, e.g. one channel of one pixel by one level in SDXL's window),
    and for SD and SDXL the DPM++ 2M Karras scheduler; FLUX Fill's scheduler as shipped."""
    if family == "flux-fill":
        from diffusers import FluxFillPipeline

        pipe = FluxFillPipeline.from_pretrained(folder)
    else:
        from diffusers import AutoPipelineForInpainting, DPMSolverMultistepScheduler

        pipe = AutoPipelineForInpainting.from_pretrained(folder)
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, use_karras_sigmas=True)
    pipe.vae.to(memory_format=torch.channels_last)
    return pipe


@pytest.mark.parametrize("family", ["sd-inpaint", "sdxl-inpaint", "flux-fill"])
def test_one_window_equals_a_direct_diffusers_call(family, tiny):
    crop, mask = _window(np.random.default_rng(1))
    ours = load_inpainter(resolve(str(tiny[family])), "cpu", "auto")
    (repainted,) = ours.inpaint([crop], mask, prompt="a red car", negative_prompt="", seeds=[7], steps=2)

    pipe = _documented_pipeline(family, tiny[family])
    with torch.inference_mode():
        direct = pipe(prompt="a red car", image=Image.fromarray(crop), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
                      height=SIDE, width=SIDE, num_inference_steps=2, guidance_scale=ours.default_guidance,
                      strength=ours.default_strength, generator=torch.Generator("cpu").manual_seed(7)).images[0]
    np.testing.assert_array_equal(repainted, np.asarray(direct))


def test_a_negative_prompt_reaches_the_pipeline(tiny):
    crop, mask = _window(np.random.default_rng(2))
    ours = load_inpainter(resolve(str(tiny["sd-inpaint"])), "cpu", "auto")
    (repainted,) = ours.inpaint([crop], mask, prompt="a cat", negative_prompt="a dog", seeds=[1], steps=2)
    pipe = _documented_pipeline("sd-inpaint", tiny["sd-inpaint"])
    with torch.inference_mode():
        direct = pipe(prompt="a cat", negative_prompt="a dog", image=Image.fromarray(crop),
                      mask_image=Image.fromarray(mask.astype(np.uint8) * 255), height=SIDE, width=SIDE,
                      num_inference_steps=2, generator=torch.Generator("cpu").manual_seed(1)).images[0]
    np.testing.assert_array_equal(repainted, np.asarray(direct))


# ------------------------------------------------------------------ --deep-cache (DeepCache)

@pytest.mark.parametrize("family", ["sd-inpaint", "sdxl-inpaint"])
def test_feature_cache_equals_deepcaches_documented_usage(family, tiny):
    """DeepCache's README: ``DeepCacheSDHelper(pipe)``, ``set_params(cache_interval, cache_branch_id)``,
    ``enable()`` around the pipeline call, ``disable()`` after it."""
    from DeepCache import DeepCacheSDHelper

    crop, mask = _window(np.random.default_rng(3))
    ours = load_inpainter(resolve(str(tiny[family])), "cpu", "auto")
    (cached,) = ours.inpaint([crop], mask, prompt="a red car", negative_prompt="", seeds=[7], steps=6, feature_cache=3)

    pipe = _documented_pipeline(family, tiny[family])
    helper = DeepCacheSDHelper(pipe=pipe)
    helper.set_params(cache_interval=3, cache_branch_id=0)
    helper.enable()
    with torch.inference_mode():
        direct = pipe(prompt="a red car", image=Image.fromarray(crop), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
                      height=SIDE, width=SIDE, num_inference_steps=6, guidance_scale=ours.default_guidance,
                      strength=ours.default_strength, generator=torch.Generator("cpu").manual_seed(7)).images[0]
    helper.disable()
    np.testing.assert_array_equal(cached, np.asarray(direct))
    (plain,) = ours.inpaint([crop], mask, prompt="a red car", negative_prompt="", seeds=[7], steps=6)
    assert not np.array_equal(cached, plain)  # the cached steps did skip work


def test_feature_cache_is_for_one_call_only(tiny):
    """The helper's wrapping lasts one call: a plain call after a cached one (of another size, as the
    next window may be) computes exactly what it computed before, and a cached call replays."""
    ours = load_inpainter(resolve(str(tiny["sd-inpaint"])), "cpu", "auto")
    crop, mask = _window(np.random.default_rng(4))
    call = dict(prompt="a cat", negative_prompt="", seeds=[5], steps=4)
    before = ours.inpaint([crop], mask, **call)[0]
    cached = ours.inpaint([crop], mask, feature_cache=3, **call)[0]
    wide, wide_mask = np.zeros((SIDE, 2 * SIDE, 3), np.uint8), np.ones((SIDE, 2 * SIDE), bool)
    ours.inpaint([wide], wide_mask, feature_cache=3, **call)
    np.testing.assert_array_equal(ours.inpaint([crop], mask, **call)[0], before)
    np.testing.assert_array_equal(ours.inpaint([crop], mask, feature_cache=3, **call)[0], cached)
    assert ours.pipe.unet.forward.__func__ is type(ours.pipe.unet).forward  # unwrapped


def test_feature_cache_needs_a_unet(tiny):
    flux = load_inpainter(resolve(str(tiny["flux-fill"])), "cpu", "auto")
    assert not flux.caches_features and Sd15Inpainter.caches_features and SdxlInpainter.caches_features
    crop, mask = _window(np.random.default_rng(0))
    with pytest.raises(UnsupportedOperationError, match="has no UNet: --deep-cache works with SD 1.5 and SDXL"):
        flux.inpaint([crop], mask, prompt="a cat", negative_prompt="", seeds=[0], steps=1, feature_cache=3)
