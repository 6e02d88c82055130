"""Live previews: pictures of the latents while a diffusion model denoises them.

Two decoders, both far cheaper than the model's own VAE:

- a tiny autoencoder (TAESD, through diffusers' ``AutoencoderTiny``): ``taesd`` for SD 1.5, ``taesdxl``
  for SDXL, ``taef1`` for FLUX.1 (madebyollin's). Used when it is already on this machine (a
  preview never downloads anything) or when the user names one;
- otherwise a linear map from the latent channels to RGB that needs no model. The coefficients are
  the published ones of ComfyUI's ``comfy/latent_formats.py`` (``SD15``, ``SDXL`` and ``Flux``
  ``latent_rgb_factors`` and ``latent_rgb_factors_bias``), which act, as here, on the latents the
  denoiser sees (already multiplied by the VAE's scaling factor, and shifted for FLUX); their
  output is in -1..1, mapped to 0..255 as ComfyUI's ``preview_to_image`` does.

A decoder takes latents ``(batch, channels, h, w)`` and the crop's size, and returns the first
image's preview as RGB uint8 at exactly that size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from promptpaint.backends.registry import PREVIEW_FAMILIES, cached, folder_on_disk, load_error, local_folder, resolve

log = logging.getLogger(__name__)

#: (latent channel -> RGB factors, RGB bias) per family, from ComfyUI's latent formats (see above).
LINEAR_FACTORS: dict[str, tuple[list[list[float]], list[float]]] = {
    "sd-inpaint": ([[0.3512, 0.2297, 0.3227],
                    [0.3250, 0.4974, 0.2350],
                    [-0.2829, 0.1762, 0.2721],
                    [-0.2120, -0.2616, -0.7177]], [0.0, 0.0, 0.0]),
    "sdxl-inpaint": ([[0.3651, 0.4232, 0.4341],
                      [-0.2533, -0.0042, 0.1068],
                      [0.1076, 0.1111, -0.0362],
                      [-0.3165, -0.2492, -0.2188]], [0.1084, -0.0175, -0.0011]),
    "flux-fill": ([[-0.0346, 0.0244, 0.0681],
                   [0.0034, 0.0210, 0.0687],
                   [0.0275, -0.0668, -0.0433],
                   [-0.0174, 0.0160, 0.0617],
                   [0.0859, 0.0721, 0.0329],
                   [0.0004, 0.0383, 0.0115],
                   [0.0405, 0.0861, 0.0915],
                   [-0.0236, -0.0185, -0.0259],
                   [-0.0245, 0.0250, 0.1180],
                   [0.1008, 0.0755, -0.0421],
                   [-0.0515, 0.0201, 0.0011],
                   [0.0428, -0.0012, -0.0036],
                   [0.0817, 0.0765, 0.0749],
                   [-0.1264, -0.0522, -0.1103],
                   [-0.0280, -0.0881, -0.0499],
                   [-0.1262, -0.0982, -0.0778]], [-0.0329, -0.0718, -0.0851]),
}  # fmt: skip

#: The tiny autoencoder for each family's latent space.
TINY_VAES = {"sd-inpaint": "taesd", "sdxl-inpaint": "taesdxl", "flux-fill": "taef1"}

#: latents (batch, channels, h, w) and the crop's (width, height) -> RGB uint8 (height, width, 3)
Decoder = Callable[..., np.ndarray]


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """-1..1 floats -> 0..255 (clipped, rounded)."""
    return np.rint((np.clip(rgb, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def fit(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a preview to the crop's (width, height): latents are 8 (SD) or 16 (packed FLUX) times smaller."""
    import cv2

    if rgb.shape[1::-1] == tuple(size):
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)


class LinearPreview:
    """Latent channels -> RGB by a fixed linear map (no model, about a millisecond)."""

    kind = "linear"

    def __init__(self, family: str):
        factors, bias = LINEAR_FACTORS[family]
        self.family = family
        self.factors = np.asarray(factors, np.float32)  # (channels, 3)
        self.bias = np.asarray(bias, np.float32)
        self.channels = len(factors)

    def rgb(self, latent: np.ndarray) -> np.ndarray:
        """One latent (channels, h, w) -> RGB uint8 (h, w, 3)."""
        return to_uint8(np.einsum("chw,cr->hwr", latent.astype(np.float32), self.factors) + self.bias)

    def __call__(self, latents, size: tuple[int, int]) -> np.ndarray:
        return fit(self.rgb(latents[0].float().cpu().numpy()), size)


class TinyVaePreview:
    """TAESD-style decoding through diffusers' ``AutoencoderTiny`` (a few milliseconds on a GPU)."""

    kind = "tiny-vae"

    def __init__(self, folder, model_id: str, device: str, dtype):
        from diffusers import AutoencoderTiny

        self.model_id = model_id
        self.vae = AutoencoderTiny.from_pretrained(folder, dtype=dtype, use_safetensors=True).to(device).eval()
        self.channels = self.vae.config.latent_channels

    def __call__(self, latents, size: tuple[int, int]) -> np.ndarray:
        import torch

        config = self.vae.config
        # As a drop-in VAE would be fed by the pipelines: latents / scaling factor + shift.
        latents = latents[:1].to(self.vae.device, self.vae.dtype) / config.scaling_factor + (config.shift_factor or 0.0)
        with torch.inference_mode():
            image = self.vae.decode(latents).sample[0]
        return fit(to_uint8(image.float().permute(1, 2, 0).cpu().numpy()), size)


def load_previewer(family: str, latent_channels: int, device: str, dtype, name: str | None = None) -> Decoder | None:
    """The preview decoder for a model of ``family`` whose latents have ``latent_channels`` channels.

    ``name``: a tiny autoencoder (alias, hub id or folder; it must be available), or ``"linear"``.
    Without a name: the family's tiny autoencoder if it is already on this machine, else the linear
    map; None if neither fits these latents (then progress comes without pictures)."""
    if name == "linear":
        return _linear(family, latent_channels)
    if name is None:
        ref = resolve(TINY_VAES[family], PREVIEW_FAMILIES, "preview decoder") if family in TINY_VAES else None
        folder = folder_on_disk(ref) if ref is not None else None
        if folder is None:
            return _linear(family, latent_channels)
    else:
        ref = resolve(name, PREVIEW_FAMILIES, "preview decoder")
        folder = local_folder(ref)
    decoder = cached(("preview", ref.source, device, str(dtype)), lambda: _tiny_vae(folder, ref, device, dtype))
    if decoder.channels != latent_channels:
        log.info("%s decodes %d-channel latents, not %d: no previews", ref.source, decoder.channels, latent_channels)
        return None
    return decoder


def _tiny_vae(folder, ref, device: str, dtype) -> TinyVaePreview:
    try:
        return TinyVaePreview(folder, ref.id, device, dtype)
    except Exception as error:  # noqa: BLE001
        raise load_error(ref, error) from error


def _linear(family: str, latent_channels: int) -> LinearPreview | None:
    if family not in LINEAR_FACTORS or len(LINEAR_FACTORS[family][0]) != latent_channels:
        log.info("no linear preview for %d-channel %s latents", latent_channels, family)
        return None
    return LinearPreview(family)
