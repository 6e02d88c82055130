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


def pick_dtype(dtype: str, device: str, generative: bool):
    """``auto``: float32 on the CPU; on CUDA bfloat16 where the GPU supports it, else float16, for
    the diffusion models, and float32 for the small detection/segmentation models (their
    post-processing thresholds are calibrated in float32 and they are cheap next to diffusion)."""
    import torch

    if dtype != "auto":
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    if device == "cuda" and generative:
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps" and generative:
        return torch.float16
    return torch.float32


def enable_fast_math(device: str) -> None:
    """TF32 matmuls on Ampere+ GPUs: a free speed-up for float32 models."""
    import torch

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
