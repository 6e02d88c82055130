"""Device and dtype choice. Nothing is chosen at import time; nothing moves behind the user's back."""

from __future__ import annotations

from promptpaint.errors import InvalidOptionError


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidOptionError("--device cuda was asked for but no CUDA GPU is visible to torch")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InvalidOptionError("--device mps was asked for but MPS is not available")
    if device not in ("cpu", "cuda", "mps"):
        raise InvalidOptionError(f"unknown device {device!r}: use auto, cpu, cuda or mps")
    return device


def check_dtype(dtype: str, device: str, fp16_safe: bool = True) -> None:
    """Refuse, in one line and before any model loads, a dtype that cannot work: float16 on the
    CPU (PyTorch lacks float16 kernels there; diffusers would warn about it once per component),
    and float16 for a model whose activations overflow it (FLUX: black images)."""
    if dtype != "float16":
        return
    if device == "cpu":
        raise InvalidOptionError("--dtype float16 needs a GPU (cuda or mps); on the CPU use float32 or bfloat16")
    if not fp16_safe:
        raise InvalidOptionError("FLUX overflows in float16 (black images); use --dtype bfloat16 or float32")


def pick_dtype(dtype: str, device: str, generative: bool, fp16_safe: bool = True):
    """The torch dtype to load a model in. ``auto``: float32 on the CPU and for the small
    detection/segmentation models (their post-processing thresholds are calibrated in float32 and
    they are cheap next to diffusion); for diffusion models on CUDA bfloat16 where the GPU runs it
    natively (Ampere and later), else float16, or float32 for models that overflow in float16
    (``fp16_safe=False``: FLUX); on MPS float16, or bfloat16 for FLUX (as diffusers' own Apple
    silicon examples run it)."""
    import torch

    check_dtype(dtype, device, fp16_safe)
    if dtype != "auto":
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    if not generative or device not in ("cuda", "mps"):
        return torch.float32
    if device == "mps":
        return torch.float16 if fp16_safe else torch.bfloat16
    # Emulated bf16 (pre-Ampere GPUs) runs several times slower than float16.
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.bfloat16
    return torch.float16 if fp16_safe else torch.float32


def enable_fast_math(device: str) -> None:
    """TF32 matmuls on Ampere+ GPUs: a free speed-up for float32 models."""
    import torch

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
