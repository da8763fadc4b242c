"""The DIP "skip" encoder–decoder (Ulyanov, Vedaldi, Lempitsky, CVPR 2018, ``models/skip.py``).

Level ``i`` (``i = 0`` outermost) maps ``c_in`` channels to ``up[i]`` channels:

* skip branch (if ``skip[i] > 0``): conv ``ks x ks`` (``c_in → skip[i]``) → BN → act;
* deeper branch: conv ``kd`` stride 2 (``c_in → down[i]``) → BN → act → conv ``kd`` (``down[i] → down[i]``) → BN →
  act → level ``i + 1`` (if any) → upsample ×2;
* concat(skip, deeper) → BN → conv ``ku`` (→ ``up[i]``) → BN → act → [conv 1×1 → BN → act if ``need1x1_up``].

The network is level 0 → conv 1×1 (``up[0] → out_channels``) → sigmoid. Defaults are the DIP denoising / super-
resolution configuration that ES-DIP, DOP and DeepRED reuse: 5 scales, 128 channels down and up, 4 skip channels,
3×3 convs, stride-2 downsampling, bilinear upsampling, reflection padding, LeakyReLU(0.2), sigmoid, 32 input channels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from dipjax.networks.layers import ACTIVATIONS, BatchNorm1Image, Conv2d, downsample2x, upsample2x


class SkipNet(nn.Module):
    """DIP hourglass with skip connections; input ``(H, W, in_channels)``, output ``(H, W, out_channels)``."""

    out_channels: int = 3
    in_channels: int = 32
    down: tuple[int, ...] = (128,) * 5
    up: tuple[int, ...] = (128,) * 5
    skip: tuple[int, ...] = (4,) * 5
    kernel_down: int = 3
    kernel_up: int = 3
    kernel_skip: int = 1
    padding: str = "reflection"
    upsample: str = "bilinear"
    downsample: str = "stride"  # "stride" | "avg" | "max"
    activation: str = "leaky_relu"
    need1x1_up: bool = True
    sigmoid: bool = True
    use_bias: bool = True
    weight_init: str = "pytorch"

    @property
    def scales(self) -> int:
        return len(self.down)

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        """Shape of the network input ``z`` for an ``height x width`` output."""
        return (height, width, self.in_channels)

    def check_size(self, height: int, width: int) -> None:
        """Raise ``ValueError`` unless ``height x width`` fits: divisible by 2^scales with ≥ 2 pixels at the
        coarsest scale (reflection padding needs two)."""
        m = 2**self.scales
        for s in (height, width):
            if s % m or s < 2 * m:
                raise ValueError(f"a {self.scales}-scale skip network needs image sides that are multiples of {m} "
                                 f"and at least {2 * m}, got {height}x{width}")

    @nn.compact
    def __call__(self, z):
        if not len(self.down) == len(self.up) == len(self.skip):
            raise ValueError("down, up and skip must have one entry per scale")
        act = ACTIVATIONS[self.activation]

        def conv(features, k, stride=1, name=None):
            return Conv2d(features, k, stride, self.padding, self.use_bias, self.weight_init, name=name)

        def bn(name):
            return BatchNorm1Image(weight_init=self.weight_init, name=name)

        skips, h = [], z
        for i in range(self.scales):
            s = None
            if self.skip[i] > 0:
                s = act(bn(f"skip{i}_bn")(conv(self.skip[i], self.kernel_skip, name=f"skip{i}_conv")(h)))
            skips.append(s)
            stride = 2 if self.downsample == "stride" else 1
            h = conv(self.down[i], self.kernel_down, stride, name=f"down{i}_conv1")(h)
            if self.downsample != "stride":
                h = downsample2x(h, self.downsample)
            h = act(bn(f"down{i}_bn1")(h))
            h = act(bn(f"down{i}_bn2")(conv(self.down[i], self.kernel_down, name=f"down{i}_conv2")(h)))
        for i in reversed(range(self.scales)):
            h = upsample2x(h, self.upsample)
            if skips[i] is not None:
                h = jnp.concatenate([skips[i], h], axis=-1)
            h = bn(f"up{i}_bn0")(h)
            h = act(bn(f"up{i}_bn1")(conv(self.up[i], self.kernel_up, name=f"up{i}_conv")(h)))
            if self.need1x1_up:
                h = act(bn(f"up{i}_bn2")(conv(self.up[i], 1, name=f"up{i}_conv1x1")(h)))
        out = conv(self.out_channels, 1, name="head")(h)
        return jax.nn.sigmoid(out) if self.sigmoid else out


def skip_net(out_channels: int = 3, width: int = 128, scales: int = 5, skip_channels: int = 4,
             in_channels: int = 32, **kwargs) -> SkipNet:
    """The DIP skip net with ``scales`` levels of ``width`` channels and ``skip_channels`` skip channels."""
    return SkipNet(out_channels=out_channels, in_channels=in_channels, down=(width,) * scales, up=(width,) * scales,
                   skip=(skip_channels,) * scales, **kwargs)
