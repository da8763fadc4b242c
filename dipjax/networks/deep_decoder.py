"""Deep Decoder (Heckel & Hand, ICLR 2019; ``include/decoder.py`` of reinhardh/supplement_deep_decoder).

For ``channels = (k,) * L`` there are ``L + 1`` blocks; block ``i`` is 1×1 conv without bias (``k → k``) → bilinear
×2 upsampling (all blocks but the last) → ReLU → channel normalisation (BatchNorm of one image, affine). The head is a
1×1 conv without bias (``k → out_channels``) → sigmoid. The input is a fixed ``(H/2^L, W/2^L, k)`` tensor drawn
U[0, 0.1). Parameter count ``(L+1) k² + 2 k (L+1) + k · C_out``: 100,224 for k = 128, L = 5, C_out = 3.
"""

from __future__ import annotations

import jax
from flax import linen as nn

from dipjax.networks.layers import BatchNorm1Image, Conv2d, upsample2x


class DeepDecoder(nn.Module):
    """Under-parameterised 1×1-convolution decoder; ``channels`` lists the width of each upsampling stage."""

    out_channels: int = 3
    channels: tuple[int, ...] = (128,) * 5
    upsample: str = "bilinear"
    sigmoid: bool = True
    weight_init: str = "pytorch"

    def input_shape(self, height: int, width: int) -> tuple[int, int, int]:
        m = 2 ** len(self.channels)
        return (height // m, width // m, self.channels[0])

    def check_size(self, height: int, width: int) -> None:
        m = 2 ** len(self.channels)
        if height % m or width % m:
            raise ValueError(f"a Deep Decoder with {len(self.channels)} upsamplings needs image sides that are "
                             f"multiples of {m}, got {height}x{width}")

    @nn.compact
    def __call__(self, z):
        widths = tuple(self.channels) + (self.channels[-1],)
        h = z
        for i, c in enumerate(widths):
            h = Conv2d(c, 1, use_bias=False, weight_init=self.weight_init, name=f"block{i}_conv")(h)
            if i < len(widths) - 1:
                h = upsample2x(h, self.upsample)
            h = BatchNorm1Image(weight_init=self.weight_init, name=f"block{i}_bn")(jax.nn.relu(h))
        out = Conv2d(self.out_channels, 1, use_bias=False, weight_init=self.weight_init, name="head")(h)
        return jax.nn.sigmoid(out) if self.sigmoid else out


def deep_decoder(out_channels: int = 3, k: int = 128, layers: int = 5, **kwargs) -> DeepDecoder:
    """Deep Decoder with ``layers`` upsampling stages of ``k`` channels (``layers + 1`` blocks)."""
    return DeepDecoder(out_channels=out_channels, channels=(k,) * layers, **kwargs)
