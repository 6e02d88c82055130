"""big-lama, the LaMa checkpoint users run, as a network of random weights for the benchmark.

The generator is advimman/lama's ``FFCResNetGenerator`` with big-lama's configuration (about 51M
parameters): reflection pad 3 + 7x7 conv 4 -> 64; three stride-2 3x3 downsamplings
64 -> 128 -> 256 -> 512, the last one sending 3/4 of its channels to the global (Fourier) branch;
18 fast-Fourier-convolution residual blocks at 512 channels (128 local, 384 global); three
transposed-conv upsamplings 512 -> 256 -> 128 -> 64; reflection pad 3 + 7x7 conv 64 -> 3; sigmoid.
Every convolution is followed by batch norm and ReLU as in the original.

:class:`CarveLama` wraps it with the interface of the public ONNX export (Carve/LaMa-ONNX
``lama_fp32.onnx``): inputs ``image`` [1, 3, S, S] RGB in 0..1 and ``mask`` [1, 1, S, S]
(1 = fill), output [1, 3, S, S] in 0..255 with the input image kept outside the hole.

The 2-D FFTs of the Fourier units are products with fixed DFT matrices, as in that export: its
input size is fixed, and torch's ONNX exporter here has no FFT (the TorchScript exporter refuses
``aten::fft_rfftn``; the dynamo one would need onnxscript). The matrices compute exactly
``torch.fft.rfftn`` / ``irfftn`` with ``norm="ortho"``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from torch import nn

#: The side the public export is fixed at.
SIZE = 512
GLOBAL_RATIO = 0.75


def _dft_matrices(n: int, columns: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos`` and ``sin`` of ``2 pi j k / n`` for j < n, k < ``columns``, scaled by 1/sqrt(n)."""
    j = torch.arange(n, dtype=torch.float64)[:, None]
    k = torch.arange(columns, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * j * k / n
    return (torch.cos(angle) / math.sqrt(n)).float(), (torch.sin(angle) / math.sqrt(n)).float()


class FourierUnit(nn.Module):
    """Real 2-D FFT, a 1x1 conv + BN + ReLU on the stacked real and imaginary parts, inverse FFT."""

    def __init__(self, channels: int, size: tuple[int, int]):
        super().__init__()
        h, w = size
        half = w // 2 + 1
        self.conv = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(2 * channels)
        self.relu = nn.ReLU(inplace=True)
        cos_w, sin_w = _dft_matrices(w, half)  # rfft along the width: (.., w) @ (w, half)
        cos_h, sin_h = _dft_matrices(h, h)  # fft along the height: (h, h) @ (.., h, half)
        # irfft along the width: the half spectrum counts twice, except the DC and Nyquist columns.
        twice = torch.full((half, 1), 2.0)
        twice[0] = 1.0
        if w % 2 == 0:
            twice[-1] = 1.0
        for name, value in {"cos_w": cos_w, "sin_w": sin_w, "cos_h": cos_h, "sin_h": sin_h,
                            "icos_w": cos_w.T * twice, "isin_w": sin_w.T * twice}.items():
            self.register_buffer(name, value.contiguous(), persistent=False)

    def rfft2(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = x @ self.cos_w, -(x @ self.sin_w)  # e^{-i theta} along the width
        return self.cos_h @ a + self.sin_h @ b, self.cos_h @ b - self.sin_h @ a  # then along the height

    def irfft2(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        a = self.cos_h @ real - self.sin_h @ imag  # e^{+i theta} along the height
        b = self.cos_h @ imag + self.sin_h @ real
        return a @ self.icos_w - b @ self.isin_w  # real part of the Hermitian inverse along the width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, _ = x.shape
        real, imag = self.rfft2(x)
        spectrum = torch.stack((real, imag), dim=2).reshape(n, 2 * c, h, -1)  # LaMa's channel order
        spectrum = self.relu(self.bn(self.conv(spectrum))).reshape(n, c, 2, h, -1)
        return self.irfft2(spectrum[:, :, 0], spectrum[:, :, 1])


class SpectralTransform(nn.Module):
    """The global-to-global path: 1x1 conv halving the channels, a Fourier unit, 1x1 conv back."""

    def __init__(self, in_channels: int, out_channels: int, size: tuple[int, int]):
        super().__init__()
        mid = out_channels // 2
        self.conv1 = nn.Sequential(nn.Conv2d(in_channels, mid, 1, bias=False), nn.BatchNorm2d(mid),
                                   nn.ReLU(inplace=True))
        self.fu = FourierUnit(mid, size)
        self.conv2 = nn.Conv2d(mid, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


Pair = tuple[torch.Tensor, torch.Tensor | None]  # (local, global) features; no global part: None


class FFCBnAct(nn.Module):
    """A fast Fourier convolution (local <-> local / global convs, global -> global spectral), each
    output part followed by batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, ratio_in: float, ratio_out: float,
                 size: tuple[int, int], stride: int = 1, padding: int = 0):
        super().__init__()
        in_g, out_g = int(in_channels * ratio_in), int(out_channels * ratio_out)
        in_l, out_l = in_channels - in_g, out_channels - out_g

        def conv(cin: int, cout: int) -> nn.Module | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv2d(cin, cout, kernel, stride, padding, bias=False, padding_mode="reflect")

        self.l2l, self.l2g, self.g2l = conv(in_l, out_l), conv(in_l, out_g), conv(in_g, out_l)
        self.g2g = SpectralTransform(in_g, out_g, size) if in_g and out_g else None
        self.out_l = nn.Sequential(nn.BatchNorm2d(out_l), nn.ReLU(inplace=True)) if out_l else None
        self.out_g = nn.Sequential(nn.BatchNorm2d(out_g), nn.ReLU(inplace=True)) if out_g else None

    def forward(self, x: Pair) -> Pair:
        x_l, x_g = x
        out_l = _sum(_apply(self.l2l, x_l), _apply(self.g2l, x_g))
        out_g = _sum(_apply(self.l2g, x_l), _apply(self.g2g, x_g))
        return _apply(self.out_l, out_l), _apply(self.out_g, out_g)


def _apply(module: nn.Module | None, x: torch.Tensor | None) -> torch.Tensor | None:
    return None if module is None or x is None else module(x)


def _sum(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    return b if a is None else a if b is None else a + b


class FFCResnetBlock(nn.Module):
    def __init__(self, channels: int, size: tuple[int, int]):
        super().__init__()
        self.conv1 = FFCBnAct(channels, channels, 3, GLOBAL_RATIO, GLOBAL_RATIO, size, padding=1)
        self.conv2 = FFCBnAct(channels, channels, 3, GLOBAL_RATIO, GLOBAL_RATIO, size, padding=1)

    def forward(self, x: Pair) -> Pair:
        y_l, y_g = self.conv2(self.conv1(x))
        return x[0] + y_l, x[1] + y_g


class BigLamaGenerator(nn.Module):
    """big-lama's generator for ``size`` x ``size`` inputs: (masked RGB, mask) -> RGB in 0..1."""

    def __init__(self, size: int = SIZE, ngf: int = 64, n_down: int = 3, n_blocks: int = 18):
        super().__init__()
        bottleneck = (size >> n_down, size >> n_down)
        encoder = [FFCBnAct(4, ngf, 7, 0.0, 0.0, bottleneck)]
        for i in range(n_down):
            last = i == n_down - 1  # hands 3/4 of its channels to the Fourier blocks' global part
            encoder.append(FFCBnAct(ngf << i, ngf << (i + 1), 3, 0.0, GLOBAL_RATIO if last else 0.0,
                                    bottleneck, stride=2, padding=1))
        encoder += [FFCResnetBlock(ngf << n_down, bottleneck) for _ in range(n_blocks)]
        self.pad = nn.ReflectionPad2d(3)
        self.encoder = nn.Sequential(*encoder)
        decoder: list[nn.Module] = []
        for i in range(n_down, 0, -1):
            decoder += [nn.ConvTranspose2d(ngf << i, ngf << (i - 1), 3, stride=2, padding=1, output_padding=1),
                        nn.BatchNorm2d(ngf << (i - 1)), nn.ReLU(inplace=True)]
        decoder += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Sigmoid()]
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_l, x_g = self.encoder((self.pad(x), None))
        return self.decoder(torch.cat([x_l, x_g], dim=1))


class CarveLama(nn.Module):
    """The public ONNX export's interface around the generator (see the module docstring)."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        masked = image * (1 - mask)
        predicted = self.generator(torch.cat([masked, mask], dim=1))
        inpainted = mask * predicted + (1 - mask) * image
        return torch.clamp(inpainted * 255, 0, 255)


def export(path: Path, size: int = SIZE, n_blocks: int = 18) -> int:
    """Write the random big-lama as ONNX at ``path`` (fixed ``size``); returns its parameter count.
    (Fewer ``n_blocks`` only to test the export quickly.)"""
    model = CarveLama(BigLamaGenerator(size, n_blocks=n_blocks)).eval()
    image, mask = torch.rand(1, 3, size, size), (torch.rand(1, 1, size, size) > 0.5).float()
    with torch.no_grad(), warnings.catch_warnings():
        # The reflection pads' index lists are reversed with step -1 slices that the exporter leaves
        # unfolded (onnxruntime folds them when it loads the graph).
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        torch.onnx.export(model, (image, mask), str(path), dynamo=False, opset_version=17,
                          input_names=["image", "mask"], output_names=["output"])
    return sum(p.numel() for p in model.parameters())
