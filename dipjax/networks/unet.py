"""The U-Nets of aSeqDIP and Self-Guided DIP (milesial-style parts, ``unet/unet_shallow.py`` and
``unet/medium_unet.py`` of sjames40/Aseq_DIP).

``inc = DoubleConv(C_in → f0)``; ``Down_j = maxpool 2 → DoubleConv(f_{j−1} → f_j)``; ``Up_j = bilinear ×2
(align_corners=True) → concat(skip_{j−1}, ·) → DoubleConv(c → out_j, mid = c/2)``; ``outc = 1×1 conv``.
``DoubleConv = (3×3 conv, zero padding → BN → ReLU) × 2``. The shallow net uses ``f = (64, 128, 128)``, the medium
net ``(64, 128, 256, 256)`` (its unused ``down4`` is omitted). The last feature width must equal the one before it
(that is how the upstream nets are wired: ``256 // factor`` with ``factor = 2``).

Not verified upstream (the ``unet_parts.py`` of that repository is not in our reference store): whether the 3×3 convs
carry a bias. Current milesial parts do not, so ``conv_bias=False`` is the default; the field lets you change it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from dipjax.networks.layers import BatchNorm1Image, Conv2d, downsample2x, upsample2x


class UNet(nn.Module):
    """U-Net on ``(H, W, in_channels)``; ``features`` lists the widths from the finest level down."""

    out_channels: int = 3
    in_channels: int = 3
    features: tuple[int, ...] = (64, 128, 128)
    conv_bias: bool = False
    sigmoid: bool = False
    weight_init: str = "normal002"

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return (height, width, self.in_channels)

    def check_size(self, height: int, width: int) -> None:
        """Sides must be multiples of 2^poolings and leave at least 2 pixels at the coarsest level (batch norm over
        one pixel is degenerate: its variance is zero)."""
        m = 2 ** (len(self.features) - 1)
        if height % m or width % m or min(height, width) < 2 * m:
            raise ValueError(f"a U-Net with {len(self.features) - 1} poolings needs image sides that are multiples "
                             f"of {m} and at least {2 * m}, got {height}x{width}")

    def _double_conv(self, x, features, mid, name):
        for j, c in enumerate((mid, features)):
            x = Conv2d(c, 3, padding="zero", use_bias=self.conv_bias, weight_init=self.weight_init,
                       name=f"{name}_conv{j}")(x)
            x = jax.nn.relu(BatchNorm1Image(weight_init=self.weight_init, name=f"{name}_bn{j}")(x))
        return x

    @nn.compact
    def __call__(self, x):
        f = self.features
        if len(f) < 2 or f[-1] != f[-2]:
            raise ValueError(f"U-Net features must end with two equal widths, got {f}")
        skips = [self._double_conv(x, f[0], f[0], "inc")]
        for j in range(1, len(f)):
            skips.append(self._double_conv(downsample2x(skips[-1], "max"), f[j], f[j], f"down{j}"))
        h = skips.pop()
        for j in reversed(range(1, len(f))):
            h = jnp.concatenate([skips.pop(), upsample2x(h, "bilinear", align_corners=True)], axis=-1)
            out = f[max(j - 2, 0)]
            h = self._double_conv(h, out, h.shape[-1] // 2, f"up{j}")
        y = Conv2d(self.out_channels, 1, use_bias=True, weight_init=self.weight_init, name="outc")(h)
        return jax.nn.sigmoid(y) if self.sigmoid else y


def shallow_unet(in_channels: int = 3, out_channels: int = 3, **kwargs) -> UNet:
    """aSeqDIP's ``UNet`` for denoising, inpainting and deblurring (two poolings: 64 → 128 → 128)."""
    return UNet(out_channels=out_channels, in_channels=in_channels, features=(64, 128, 128), **kwargs)


def medium_unet(in_channels: int = 2, out_channels: int = 2, **kwargs) -> UNet:
    """aSeqDIP's ``MediumUNet`` for MRI and CT (three poolings: 64 → 128 → 256 → 256)."""
    return UNet(out_channels=out_channels, in_channels=in_channels, features=(64, 128, 256, 256), **kwargs)
