"""ConvDecoder (Darestani & Heckel, "Accelerated MRI with un-trained neural networks", IEEE TCI 2021;
``ConvDecoder/include/decoder_conv.py`` of MLI-lab/ConvDecoder, in the later signature its MRI notebooks call).

From a fixed ``in_size × channels`` input, ``layers − 1`` stages each upsample to the next size of a geometric
progression ending at ``out_size`` (nearest or bilinear), then 3×3 conv (no bias, zero "same" padding) → ReLU →
BatchNorm (of one image, affine); then one more 3×3 conv → ReLU → BatchNorm and a 1×1 head conv (→ sigmoid if
``sigmoid``). Hidden sizes are ``ceil(in · r^n)`` with ``r = (out/in)^(1/(layers−1))``, as upstream. Unlike the Deep
Decoder its convolutions are 3×3, so it has a spatial (not only channel-mixing) prior.
"""

from __future__ import annotations

import math

import jax
from flax import linen as nn

from dipjax.networks.layers import BatchNorm1Image, Conv2d


def _hidden_sizes(in_size, out_size, layers):
    r = [(o / i) ** (1.0 / (layers - 1)) for i, o in zip(in_size, out_size)]
    sizes = [tuple(int(math.ceil(r[d] ** n * in_size[d])) for d in range(2)) for n in range(1, layers - 1)]
    return sizes + [tuple(out_size)]


class ConvDecoder(nn.Module):
    """Upsample → conv 3×3 → ReLU → BN stages from ``in_size`` to ``out_size``; input ``(*in_size, channels)``."""

    out_size: tuple[int, int]
    out_channels: int = 3
    channels: int = 64
    layers: int = 7
    in_size: tuple[int, int] = (4, 4)
    kernel_size: int = 3
    upsample: str = "nearest"
    sigmoid: bool = True
    weight_init: str = "pytorch"

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return (*self.in_size, self.channels)

    def check_size(self, height: int, width: int) -> None:
        if (height, width) != tuple(self.out_size):
            raise ValueError(f"this ConvDecoder was built for {self.out_size[0]}x{self.out_size[1]} images, "
                             f"got {height}x{width}")
        if self.layers < 2 or min(self.in_size) < 1:
            raise ValueError("a ConvDecoder needs at least 2 layers and a positive input size")

    @nn.compact
    def __call__(self, z):
        if self.upsample not in ("nearest", "bilinear"):
            raise ValueError(f"unknown upsampling mode {self.upsample!r}; expected 'nearest' or 'bilinear'")
        h = z
        for i, size in enumerate(_hidden_sizes(self.in_size, self.out_size, self.layers)):
            h = jax.image.resize(h, h.shape[:-3] + size + h.shape[-1:],
                                 "nearest" if self.upsample == "nearest" else "linear")
            h = Conv2d(self.channels, self.kernel_size, padding="zero", use_bias=False,
                       weight_init=self.weight_init, name=f"stage{i}_conv")(h)
            h = BatchNorm1Image(name=f"stage{i}_bn")(jax.nn.relu(h))
        h = Conv2d(self.channels, self.kernel_size, padding="zero", use_bias=False, weight_init=self.weight_init,
                   name="last_conv")(h)
        h = BatchNorm1Image(name="last_bn")(jax.nn.relu(h))
        out = Conv2d(self.out_channels, 1, use_bias=False, weight_init=self.weight_init, name="head")(h)
        return jax.nn.sigmoid(out) if self.sigmoid else out


def conv_decoder(out_size, out_channels: int = 3, channels: int = 64, layers: int = 7, **kwargs) -> ConvDecoder:
    """A ConvDecoder for ``out_size = (H, W)`` images."""
    return ConvDecoder(out_size=tuple(out_size), out_channels=out_channels, channels=channels, layers=layers,
                       **kwargs)
