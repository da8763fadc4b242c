"""Fitting an under-parameterised decoder: Deep Decoder (Heckel & Hand, ICLR 2019) and ConvDecoder (Darestani &
Heckel, IEEE TCI 2021); survey §3.3 (re-parameterisation).

    C* = argmin_C  ‖A G_C(z) − y‖²,    x* = G_C*(z)

The same algorithm as DIP (Adam on the mean squared error from a fixed random input, ``include/fit.py`` of
reinhardh/supplement_deep_decoder) with the decoder's defaults: k = 128 channels, 5 upsamplings (6 blocks), lr 0.01,
1900 iterations for denoising, input ``0.1 · U[0, 1)`` of shape ``(H/32, W/32, k)``, **no** input perturbation
(``reg_noise_std = 0``) and the last iterate as output. The prior is the small parameter count (100,224 for k = 128
on RGB: 7.85× fewer than the pixels of a 512² image), so fitting stops short of the noise without early stopping.
Inpainting (``inpainting.ipynb`` cell 7): k = 256, 40,000 iterations, lr 0.0025, input noise 0.005 multiplied by 0.7
every 500 steps.

ConvDecoder: the network of MLI-lab/ConvDecoder's ``decoder_conv.py`` (:class:`dipjax.networks.ConvDecoder`,
``variant="mli"``) with that function's defaults for images (16×16 input, 6 layers, 64 channels, bilinear, sigmoid),
input ``0.1 · U[0, 1)`` as in the lab's notebooks; Adam 1e-2 for 2500 iterations as deepinv's ``DeepImagePrior``
(no budget is fixed upstream for natural images).
"""

from __future__ import annotations

import dataclasses

from flax import linen as nn

from dipjax.methods import dip
from dipjax.methods.dip import DIP
from dipjax.methods.registry import MethodSpec, preset, register_method
from dipjax.networks import conv_decoder, deep_decoder


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


def deep_decoder_network(image_shape, width: int = 128, scales: int = 5, **kwargs) -> nn.Module:
    """Deep Decoder with k = ``width`` channels and ``scales`` upsamplings."""
    return deep_decoder(image_shape[-1], k=width, layers=scales, **kwargs)


def conv_decoder_network(image_shape, width: int = 64, scales: int = 6, **kwargs) -> nn.Module:
    """ConvDecoder for the image size with ``width`` channels and ``scales`` layers."""
    return conv_decoder(image_shape[:2], image_shape[-1], channels=width, layers=scales, **kwargs)


register_method(MethodSpec("deep_decoder", "Deep Decoder", DeepDecoderFit, deep_decoder_network, (
    preset(None, "denoising.ipynb cells 7–9 (reinhardh/supplement_deep_decoder 9031ea9): k = 128, 1900 iterations, "
           "lr 0.01, no input noise", steps=1900),
    preset("inpaint", "inpainting.ipynb cell 7: k = 256, 40,000 iterations, lr 0.0025, input noise 0.005 ×0.7 "
           "every 500", steps=40_000, lr=0.0025, input_noise_std=0.005, input_noise_decay=0.7,
           input_noise_decay_every=500, network=dict(width=256)),
), (dip.LR, dip.INPUT_NOISE, dip.EMA)))

register_method(MethodSpec("conv_decoder", "ConvDecoder", ConvDecoderFit, conv_decoder_network, (
    preset(None, "MLI-lab/ConvDecoder decoder_conv.py (f5bb5ee) defaults; Adam 1e-2, 2500 iterations as deepinv's "
           "DeepImagePrior (deepinv/models/dip.py)", steps=2500),
    preset("mri", "MLI-lab MRI notebook [V3]: 160 channels, 8 layers, nearest upsampling, no sigmoid, input "
           "0.1·U[0, 1) of 8 × 4 for 640 × 368 k-space (8 × 8 here, for square images); its iteration count is not "
           "read, so deepinv's 2500; output 2 channels with SENSE maps (the notebook fits 2 × coils channels)",
           network=dict(width=160, scales=8, in_size=(8, 8), upsample="nearest")),
), (dip.LR, dip.INPUT_NOISE, dip.EMA)))
