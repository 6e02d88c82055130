"""Dtype choice per device and model, with the GPU's capabilities mocked."""

from __future__ import annotations

import pytest
import torch

from promptpaint.backends.runtime import check_dtype, pick_dtype
from promptpaint.errors import InvalidOptionError


@pytest.fixture()
def gpu(monkeypatch):
    """A CUDA GPU that runs bf16 natively (``native=True``, Ampere+) or only by emulation."""

    def make(native: bool) -> None:
        def is_bf16_supported(including_emulation: bool = True) -> bool:
            return native or including_emulation  # every CUDA GPU emulates bf16

        monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)

    return make


@pytest.mark.parametrize(("native", "fp16_safe", "expected"), [
    (True, True, torch.bfloat16),
    (False, True, torch.float16),  # emulated bf16 is several times slower than fp16
    (True, False, torch.bfloat16),
    (False, False, torch.float32),  # FLUX never in fp16
])
def test_auto_on_cuda_for_diffusion(gpu, native, fp16_safe, expected):
    gpu(native)
    assert pick_dtype("auto", "cuda", generative=True, fp16_safe=fp16_safe) == expected


@pytest.mark.parametrize("native", [True, False])
def test_auto_on_cuda_for_detection_and_segmentation_is_float32(gpu, native):
    gpu(native)
    assert pick_dtype("auto", "cuda", generative=False) == torch.float32


@pytest.mark.parametrize(("fp16_safe", "expected"), [(True, torch.float16), (False, torch.bfloat16)])
def test_auto_on_mps(fp16_safe, expected):
    assert pick_dtype("auto", "mps", generative=True, fp16_safe=fp16_safe) == expected


@pytest.mark.parametrize("generative", [True, False])
@pytest.mark.parametrize("fp16_safe", [True, False])
def test_auto_on_the_cpu_is_float32(generative, fp16_safe):
    assert pick_dtype("auto", "cpu", generative=generative, fp16_safe=fp16_safe) == torch.float32


@pytest.mark.parametrize(("dtype", "device", "expected"), [
    ("float32", "cuda", torch.float32), ("bfloat16", "cpu", torch.bfloat16), ("float16", "cuda", torch.float16),
])
def test_an_explicit_dtype_is_kept(dtype, device, expected):
    assert pick_dtype(dtype, device, generative=True) == expected


@pytest.mark.parametrize(("device", "fp16_safe", "message"), [
    ("cpu", True, "--dtype float16 needs a GPU (cuda or mps); on the CPU use float32 or bfloat16"),
    ("cuda", False, "FLUX overflows in float16 (black images); use --dtype bfloat16 or float32"),
    ("mps", False, "FLUX overflows in float16 (black images); use --dtype bfloat16 or float32"),
])
def test_float16_where_it_cannot_work_is_refused_in_one_line(device, fp16_safe, message):
    with pytest.raises(InvalidOptionError) as caught:
        check_dtype("float16", device, fp16_safe)
    assert str(caught.value) == message
    with pytest.raises(InvalidOptionError):
        pick_dtype("float16", device, generative=True, fp16_safe=fp16_safe)
