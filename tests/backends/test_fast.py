"""Fast mode (backends/fast.py, FastInpainter): the distillation LoRAs load through diffusers'
``load_lora_weights`` into the kit's models, sample with their schedulers, replay exactly, and leave
the plain model exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest

from promptpaint.backends.fast import FAST_DEFAULTS, FAST_LORAS, fast_mode
from promptpaint.backends.registry import ALIASES, resolve
from promptpaint.errors import InvalidOptionError, ModelLoadError, UnsupportedOperationError

#: family -> the kit's twin of the LoRA fast mode uses for it
KIT_LORAS = {"sd-inpaint": "lcm-lora", "sdxl-inpaint": "tcd-lora-sdxl", "flux-fill": "flux-turbo-lora"}
SIZE = 64


@pytest.fixture(scope="module")
def crop():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8)
    mask = np.zeros((SIZE, SIZE), bool)
    mask[16:48, 8:40] = True
    return image, mask


def _inpainter(tiny, family):
    from promptpaint.backends.inpainters import load_inpainter

    return load_inpainter(resolve(str(tiny[family])), "cpu", "auto")


def _paint(model, crop, seed=3, **kwargs):
    image, mask = crop
    return model.inpaint([image], mask, prompt="a red cat", negative_prompt="", seeds=[seed], steps=None,
                         guidance=None, **kwargs)[0]


@pytest.mark.parametrize("family, scheduler, steps", [("sd-inpaint", "LCMScheduler", 4),
                                                      ("sdxl-inpaint", "TCDScheduler", 8),
                                                      ("flux-fill", "FlowMatchEulerDiscreteScheduler", 8)])
def test_fast_mode_loads_the_lora_and_replays_exactly(tiny, crop, family, scheduler, steps):
    plain = _inpainter(tiny, family)
    before = _paint(plain, crop)
    fast = plain.fast(str(tiny[KIT_LORAS[family]]))
    assert (fast.scheduler, fast.default_steps) == (scheduler, steps)
    assert fast.lora == str(tiny[KIT_LORAS[family]].resolve())
    calls = []
    first = _paint(fast, crop, progress=lambda step, total: calls.append((step, total)))
    assert calls[-1][0] == calls[-1][1] == max(1, int(steps * fast.default_strength))
    assert not np.array_equal(first, before)  # the LoRA and the sampler changed the pixels
    assert np.array_equal(_paint(fast, crop), first)  # same options and seed: same pixels
    assert np.array_equal(_paint(plain, crop), before)  # plain mode computes exactly the base model
    assert not np.array_equal(_paint(fast, crop, seed=4), first)


def test_fast_mode_shares_the_loaded_weights(tiny):
    from promptpaint.backends.inpainters import load_inpainter

    ref = resolve(str(tiny["sd-inpaint"]))
    plain = load_inpainter(ref, "cpu", "auto")
    lora = str(tiny["lcm-lora"])
    fast = load_inpainter(ref, "cpu", "auto", fast=True, lora=lora)
    assert fast is plain.fast(lora) and fast.pipe is plain.pipe  # one pipeline, one UNet
    lora_params = sum(p.numel() for name, p in plain.pipe.unet.named_parameters() if "lora_" in name)
    assert lora_params > 0  # the adapter lives in the one UNet; no second copy of the base weights


def test_lcm_fast_mode_equals_diffusers_documented_usage(tiny, crop):
    """diffusers' LCM guide, inpainting: LCMScheduler from the pipeline's scheduler config,
    ``load_lora_weights``, 4 steps; guidance 1 as the LoRA's card advises."""
    import torch
    from diffusers import AutoPipelineForInpainting, LCMScheduler
    from PIL import Image

    image, mask = crop
    ours = _paint(_inpainter(tiny, "sd-inpaint").fast(str(tiny["lcm-lora"])), crop)
    pipe = AutoPipelineForInpainting.from_pretrained(tiny["sd-inpaint"])
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.load_lora_weights(tiny["lcm-lora"])
    pipe.vae.to(memory_format=torch.channels_last)  # promptpaint's one change: faster VAE, other rounding
    out = pipe(prompt="a red cat", image=Image.fromarray(image), mask_image=Image.fromarray(mask.astype(np.uint8) * 255),
               height=SIZE, width=SIZE, num_inference_steps=4, guidance_scale=1.0,
               generator=torch.Generator("cpu").manual_seed(3), output_type="np").images[0]
    np.testing.assert_array_equal(ours, np.clip(np.rint(out * 255), 0, 255).astype(np.uint8))


def test_tcd_fast_mode_follows_diffusers_inpainting_example(tiny, crop):
    """diffusers' TCD guide, inpainting (SDXL): TCDScheduler, 8 steps, guidance 0, eta 0.3, strength 0.99."""
    mode = fast_mode("sdxl-inpaint")
    assert (mode.scheduler, mode.steps, mode.guidance, mode.strength, mode.call_kwargs) == \
        ("TCDScheduler", 8, 0.0, 0.99, {"eta": 0.3})
    fast = _inpainter(tiny, "sdxl-inpaint").fast(str(tiny["tcd-lora-sdxl"]))
    assert fast.default_strength == 0.99
    # eta reaches the scheduler: another eta gives other pixels
    other = fast.base._generate(fast, fast.adapter, [crop[0]], crop[1], prompt="a red cat", negative_prompt="",
                                seeds=[3], steps=None, guidance=None, strength=None, progress=None, previews=0,
                                extra={"eta": 0.9})[0]
    assert not np.array_equal(other, _paint(fast, crop))


def test_fast_mode_table():
    for family, alias in FAST_DEFAULTS.items():
        mode = FAST_LORAS[alias]
        assert family in mode.families and ALIASES[alias][1] == "lora"
        assert 4 <= mode.steps <= 8
    assert fast_mode("sd-inpaint").lora == "lcm-sd15"
    assert fast_mode("sdxl-inpaint", "lcm-sdxl").scheduler == "LCMScheduler"
    # a recipe records the hub id; it stands for its alias
    assert fast_mode("sdxl-inpaint", ALIASES["lcm-sdxl"][0]).scheduler == "LCMScheduler"
    # a LoRA of one's own is sampled as the family's default one
    assert fast_mode("sd-inpaint", "/somewhere/lcm").scheduler == "LCMScheduler"


def test_fast_mode_errors(tiny, crop, tmp_path):
    with pytest.raises(InvalidOptionError, match="lcm-sd15 LoRA is for sd-inpaint models, not sdxl-inpaint"):
        fast_mode("sdxl-inpaint", "lcm-sd15")
    plain = _inpainter(tiny, "sd-inpaint")
    with pytest.raises(ModelLoadError, match="promptpaint models fetch lcm-sd15"):
        plain.fast()  # the published LCM-LoRA is not downloaded here (HF_HUB_OFFLINE)
    with pytest.raises(InvalidOptionError, match="unknown lora 'no-such-lora'"):
        plain.fast("no-such-lora")
    (tmp_path / "lora.bin").write_bytes(b"x")
    with pytest.raises(InvalidOptionError, match="not a .safetensors file"):
        plain.fast(str(tmp_path / "lora.bin"))
    with pytest.raises(ModelLoadError, match="could not load LoRA"):
        _inpainter(tiny, "sdxl-inpaint").fast(str(tiny["lcm-lora"]))  # SD 1.5 shapes in an SDXL UNet
    fast = plain.fast(str(tiny["lcm-lora"]))
    with pytest.raises(UnsupportedOperationError, match="negative prompt needs --guidance above 1"):
        fast.inpaint([crop[0]], crop[1], prompt="a cat", negative_prompt="blur", seeds=[1], steps=None, guidance=None)
