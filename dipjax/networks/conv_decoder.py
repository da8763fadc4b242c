"""ConvDecoder (Darestani & Heckel, "Accelerated MRI with un-trained neural networks", IEEE TCI 2021).

Two upstreams, each matched exactly (``variant``):

* ``"mli"`` (default) — ``ConvDecoder/include/decoder_conv.py`` of MLI-lab/ConvDecoder (f5bb5ee), ``skips=False``:
  ``layers − 1`` stages of Upsample(size) → BN → 3×3 conv → BN → ReLU → 1×1 conv → BN → ReLU, then the head
  BN → 1×1 conv (→ sigmoid). No biases, affine batch norms. That file pads the 3×3 convs by a ``pads`` argument
  that defaults to 0, which shrinks every stage; the lab's MRI notebooks call a later signature with
  ``kernel_size`` whose padding keeps the size, which is what dipjax does (zero padding, (k − 1)/2). Defaults are
  ``convdecoder()``'s for images: input 16×16, 6 layers, 64 channels, bilinear, sigmoid. The lab's MRI notebooks
  use 160 channels, 8 layers, input 8×4, nearest and no sigmoid.
* ``"deepinv"`` — ``deepinv/models/dip.py``'s ``ConvDecoder``: stages Upsample(size, nearest) → 3×3 conv → ReLU →
  BN, then 3×3 conv → ReLU → BN and a 1×1 head, every conv with a bias, no sigmoid; deepinv's defaults are input
  4×4, 7 layers, 256 channels (``conv_decoder(..., variant="deepinv")`` sets them).

Hidden sizes are ``ceil(in · r^n)`` with ``r = (out/in)^(1/(layers−1))``, as both upstreams compute them.
Upsampling follows PyTorch's ``nn.Upsample(size=...)``: nearest takes source index ``floor(i · in/out)``; bilinear
uses half-pixel centres (``align_corners=False``). Unlike the Deep Decoder its convolutions are 3×3, so it has a
spatial (not only channel-mixing) prior.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import linen as nn

from dipjax.networks.layers import BatchNorm1Image, Conv2d

VARIANTS = ("mli", "deepinv")
#: deepinv's defaults (``ConvDecoder(img_size, in_size=(4, 4), layers=7, channels=256)``).
DEEPINV_DEFAULTS = dict(in_size=(4, 4), layers=7, channels=256, upsample="nearest", sigmoid=False)


def hidden_sizes(in_size, out_size, layers) -> list[tuple[int, int]]:
    """The spatial size after each upsampling stage (the last is ``out_size``)."""
    r = [(o / i) ** (1.0 / (layers - 1)) for i, o in zip(in_size, out_size)]
    sizes = [tuple(int(math.ceil(r[d] ** n * in_size[d])) for d in range(2)) for n in range(1, layers - 1)]
    return sizes + [tuple(out_size)]


def upsample_to(x, size: tuple[int, int], mode: str):
    """PyTorch ``nn.Upsample(size=size, mode=mode)`` on ``(..., H, W, C)``."""
    if mode == "bilinear":
        return jax.image.resize(x, x.shape[:-3] + tuple(size) + x.shape[-1:], "linear")
    if mode != "nearest":
        raise ValueError(f"unknown upsampling mode {mode!r}; expected 'nearest' or 'bilinear'")
    for axis, n_out in zip((x.ndim - 3, x.ndim - 2), size):
        n_in = x.shape[axis]
        x = jnp.take(x, jnp.floor(jnp.arange(n_out) * (n_in / n_out)).astype(jnp.int32), axis=axis)
    return x


class ConvDecoder(nn.Module):
    """Upsampling convolutional decoder from ``in_size`` to ``out_size``; input ``(*in_size, channels)``."""

    out_size: tuple[int, int]
    out_channels: int = 3
    channels: int = 64
    layers: int = 6
    in_size: tuple[int, int] = (16, 16)
    kernel_size: int = 3
    upsample: str = "bilinear"
    sigmoid: bool = True
    variant: str = "mli"
    weight_init: str = "pytorch"

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return (*self.in_size, self.channels)

    def check_size(self, height: int, width: int) -> None:
        if (height, width) != tuple(self.out_size):
            raise ValueError(f"this ConvDecoder was built for {self.out_size[0]}x{self.out_size[1]} images, "
                             f"got {height}x{width}")
        if self.layers < 2 or min(self.in_size) < 1 or any(i > o for i, o in zip(self.in_size, self.out_size)):
            raise ValueError(f"a ConvDecoder needs at least 2 layers and an input size {self.in_size} no larger "
                             f"than the image {self.out_size}")
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown ConvDecoder variant {self.variant!r}; expected one of {', '.join(VARIANTS)}")

    def _conv(self, k, bias, name):
        return Conv2d(self.channels, k, padding="zero", use_bias=bias, weight_init=self.weight_init, name=name)

    @nn.compact
    def __call__(self, z):
        bn = lambda name: BatchNorm1Image(weight_init=self.weight_init, name=name)  # noqa: E731
        h = z
        k = self.kernel_size
        if self.variant == "mli":
            for i, size in enumerate(hidden_sizes(self.in_size, self.out_size, self.layers)):
                h = bn(f"stage{i}_bn0")(upsample_to(h, size, self.upsample))
                h = jax.nn.relu(bn(f"stage{i}_bn1")(self._conv(k, False, f"stage{i}_conv")(h)))
                h = jax.nn.relu(bn(f"stage{i}_bn2")(self._conv(1, False, f"stage{i}_conv1x1")(h)))
            h = bn("head_bn")(h)
            bias = False
        else:
            for i, size in enumerate(hidden_sizes(self.in_size, self.out_size, self.layers)):
                h = upsample_to(h, size, self.upsample)
                h = bn(f"stage{i}_bn")(jax.nn.relu(self._conv(k, True, f"stage{i}_conv")(h)))
            h = bn("last_bn")(jax.nn.relu(self._conv(k, True, "last_conv")(h)))
            bias = True
        out = Conv2d(self.out_channels, 1, use_bias=bias, weight_init=self.weight_init, name="head")(h)
        return jax.nn.sigmoid(out) if self.sigmoid else out


def conv_decoder(out_size, out_channels: int = 3, channels: int | None = None, layers: int | None = None,
                 variant: str = "mli", **kwargs) -> ConvDecoder:
    """A ConvDecoder for ``out_size = (H, W)`` images with the chosen upstream's defaults for what is not given."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ConvDecoder variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    defaults = dict(DEEPINV_DEFAULTS) if variant == "deepinv" else {}
    if channels is not None:
        defaults["channels"] = channels
    if layers is not None:
        defaults["layers"] = layers
    return ConvDecoder(out_size=tuple(out_size), out_channels=out_channels, variant=variant, **{**defaults, **kwargs})
