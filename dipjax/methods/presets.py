"""Every method by name with its authors' defaults for a task, at a size and width the user picks.

:func:`build_method` is what the CLI and the experiment scripts call; :data:`PUBLISHED_STEPS` holds the iteration
counts of the reference code (``oes``: mask learning + sparse training). ``width`` and ``scales`` resize the
method's own network: the skip net's channels and levels (DIP, TV-DIP, DOP, DeepRED), the U-Net's first width
(``(w, 2w, 2w)``; SG-DIP, aSeqDIP), the Deep Decoder's k and number of upsamplings, the ConvDecoder's channels and
layers, DRP's single-scale width, OES's levels (its widths are fixed by the paper).
"""

from __future__ import annotations

from dipjax.methods.aseq_dip import ASeqDIP
from dipjax.methods.decoders import ConvDecoderFit, DeepDecoderFit
from dipjax.methods.deepred import DeepRED
from dipjax.methods.dip import DIP
from dipjax.methods.dop import DOP
from dipjax.methods.drp import DRP
from dipjax.methods.oes import OESMaskLearning, oes_network
from dipjax.methods.self_guided import SelfGuidedDIP
from dipjax.methods.tv_dip import TVDIP
from dipjax.networks import UNet, conv_decoder, deep_decoder, skip_net

#: Method names (CLI ``--method``) and the survey's name for each.
METHOD_NAMES = {
    "dip": "DIP", "tv_dip": "TV-DIP", "sg_dip": "Self-Guided DIP", "aseq_dip": "aSeqDIP",
    "deep_decoder": "Deep Decoder", "conv_decoder": "ConvDecoder", "oes": "OES", "dop": "DOP", "drp": "DRP",
    "deepred": "DeepRED",
}

#: Iteration counts of the reference code for denoising (OES: (mask learning, sparse training)).
PUBLISHED_STEPS = {
    "dip": 3000, "tv_dip": 3000, "sg_dip": 4000, "aseq_dip": 4000, "deep_decoder": 1900, "conv_decoder": 2500,
    "oes": (60_000, 40_000), "dop": 150_000, "drp": 5000, "deepred": 6000,
}


def _unet(channels, width):
    w = width or 64
    return UNet(out_channels=channels, in_channels=channels, features=(w, 2 * w, 2 * w))


def build_method(name: str, task: str, channels: int, size: int | tuple[int, int], *, width: int | None = None,
                 scales: int | None = None, input_noise_std: float | None = None, **overrides):
    """The method ``name`` configured for ``task`` on ``channels``-channel images of ``size``. ``overrides`` are
    dataclass fields (``lr=...``); ``input_noise_std`` applies to methods that perturb their input."""
    from dipjax.tasks import TaskConfig, default_input_noise

    if name not in METHOD_NAMES:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHOD_NAMES)}")
    hw = (size, size) if isinstance(size, int) else tuple(size)
    sigma_p = input_noise_std if input_noise_std is not None else default_input_noise(TaskConfig(task=task))
    skip = dict(out_channels=channels, width=width or 128, scales=scales or 5)
    if name == "dip":
        method = DIP(network=skip_net(**skip), input_noise_std=sigma_p, **overrides)
    elif name == "tv_dip":
        method = TVDIP(network=skip_net(**skip), input_noise_std=sigma_p, **overrides)
    elif name == "dop":
        method = DOP(network=skip_net(**skip), input_noise_std=sigma_p, **overrides)
    elif name == "deepred":
        extra = {} if input_noise_std is None else {"input_noise_std": input_noise_std}
        method = DeepRED.for_task(task, channels, network=skip_net(**skip), **extra, **overrides)
    elif name == "sg_dip":
        method = SelfGuidedDIP(network=_unet(channels, width), **overrides)
    elif name == "aseq_dip":
        net = {} if task == "inpaint" and width is None else {"network": _unet(channels, width)}
        method = ASeqDIP.for_task(task, channels, **net, **overrides)
    elif name == "deep_decoder":
        method = DeepDecoderFit(network=deep_decoder(channels, k=width or 128, layers=scales or 5), **overrides)
    elif name == "conv_decoder":
        method = ConvDecoderFit(network=conv_decoder(hw, channels, channels=width or 64, layers=scales or 7),
                                **overrides)
    elif name == "drp":
        net = {} if width is None else {"network": DRP.for_task(task, channels).network.clone(
            down=(width,), up=(width,))}
        method = DRP.for_task(task, channels, **net, **overrides)
    else:  # oes: stage 1; the caller runs OES with the learned mask (see dipjax.cli)
        method = OESMaskLearning(network=oes_network(channels, levels=scales or 6), **overrides)
    method.network.check_size(*hw)
    return method
