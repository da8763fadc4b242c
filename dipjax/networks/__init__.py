"""Flax networks used as image priors. Every network here maps one input ``z`` to one image ``(H, W, C)`` and has
``input_shape(H, W)`` (the shape of ``z``) and ``check_size(H, W)`` (raises ``ValueError`` for sizes it cannot take)."""

from dipjax.networks.conv_decoder import ConvDecoder, conv_decoder
from dipjax.networks.deep_decoder import DeepDecoder, deep_decoder
from dipjax.networks.initializers import init_params
from dipjax.networks.layers import BatchNorm1Image, Conv2d, count_params, upsample2x
from dipjax.networks.skip import SkipNet, skip_net
from dipjax.networks.unet import UNet, medium_unet, shallow_unet

__all__ = ["SkipNet", "skip_net", "UNet", "shallow_unet", "medium_unet", "DeepDecoder", "deep_decoder", "ConvDecoder", "conv_decoder",
           "Conv2d", "BatchNorm1Image", "upsample2x", "count_params",
           "init_params"]
