"""Fitting an under-parameterised decoder: Deep Decoder (Heckel & Hand, ICLR 2019) and ConvDecoder (Darestani &
Heckel, IEEE TCI 2021); survey §3.3 (re-parameterisation).

    C* = argmin_C  ‖A G_C(z) − y‖²,    x* = G_C*(z)

The same algorithm as DIP (Adam on the mean squared error from a fixed random input, ``include/fit.py`` of
reinhardh/supplement_deep_decoder) with the decoder's defaults: k = 128 channels, 5 upsamplings (6 blocks), lr 0.01,
1900 iterations for denoising, input ``0.1 · U[0, 1)`` of shape ``(H/32, W/32, k)``, **no** input perturbation
(``reg_noise_std = 0``) and the last iterate as output. The prior is the small parameter count (100,224 for k = 128
on RGB: 7.85× fewer than the pixels of a 512² image), so fitting stops short of the noise without early stopping.

ConvDecoder's defaults for natural images follow deepinv's port of it (7 layers, input 4×4, Adam 1e-2, 2500
iterations) at 64 channels (upstream MRI runs use 160–256; the field changes it).
"""

from __future__ import annotations

import dataclasses

from flax import linen as nn

from dipjax.methods.dip import DIP
from dipjax.networks import deep_decoder

#: Deep Decoder's denoising iterations (``denoising.ipynb``) and ConvDecoder's (deepinv) — for scripts and the CLI.
DEEP_DECODER_STEPS = 1900
CONV_DECODER_STEPS = 2500


@dataclasses.dataclass(frozen=True)
class DeepDecoderFit(DIP):
    """Deep Decoder fitting with the published defaults (pass ``network=deep_decoder(out_channels=1)`` for gray)."""

    network: nn.Module = dataclasses.field(default_factory=deep_decoder)
    input_noise_std: float = 0.0
    name: str = "deep_decoder"


@dataclasses.dataclass(frozen=True)
class ConvDecoderFit(DIP):
    """ConvDecoder fitting; ``network`` must be a :class:`dipjax.networks.ConvDecoder` built for the image size."""

    network: nn.Module | None = None
    input_noise_std: float = 0.0
    name: str = "conv_decoder"

    def __post_init__(self):
        if self.network is None:
            raise ValueError("ConvDecoderFit needs network=conv_decoder(out_size=(H, W), out_channels=C)")
        super().__post_init__()
