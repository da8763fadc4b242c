"""Reference-guided DIP (Zhao, Zhao, Gan, Sensors 2020; the "reference-guided DIP" baseline of SG-DIP and aSeqDIP):

    θ* = argmin_θ  ‖A f_θ(x_ref) − y‖²,    x* = f_θ*(x_ref)

DIP whose fixed input is a given reference image (a prior scan of similar anatomy or contrast) instead of random
noise; no pre-training, no training set. No official code exists (METHODS.md §9); dipjax keeps DIP's mean squared
error and Adam, with no input perturbation by default.

Without a reference scan (``reference=None``, the default) the input is the measurements' own
:meth:`~dipjax.operators.Operator.init_image` — the zero-filled ``Aᴴy`` for MRI, FBP for CT — the
``reference_guided`` branch of the lab-style SG-DIP code (METHODS.md §9, [V3]). A reference is resized to the
image grid (bilinear) and given the image's channels: a grayscale scan becomes the real part of a complex (MRI)
image, an RGB one is averaged for a grayscale task, a grayscale one repeated for an RGB task.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from dipjax.methods import dip
from dipjax.methods.base import StaticArray, image_input
from dipjax.methods.registry import MethodSpec, Option, preset, register_method
from dipjax.networks import skip_net


def match_channels(image: jax.Array, channels: int) -> jax.Array:
    """``image`` ``(H, W, c)`` with ``channels`` channels (see the module docstring)."""
    c = image.shape[-1]
    if c == channels:
        return image
    gray = jnp.mean(image, axis=-1, keepdims=True)
    if channels == 2:  # complex image: the scan is the real part
        return jnp.concatenate([gray, jnp.zeros_like(gray)], -1)
    return jnp.repeat(gray, channels, -1)


@dataclasses.dataclass(frozen=True)
class ReferenceGuidedDIP(dip.DIP):
    """DIP with ``z = reference`` (an ``(H, W, C)`` array, wrapped in :class:`StaticArray`), or ``init_image(y)``."""

    reference: StaticArray | None = None
    input_noise_std: float = 0.0
    name: str = "reference_dip"

    def __post_init__(self):
        super().__post_init__()
        if self.reference is not None:
            if not isinstance(self.reference, StaticArray):
                object.__setattr__(self, "reference", StaticArray(self.reference))
            ref = self.reference.value
            if ref.ndim != 3 or not np.all(np.isfinite(ref)):
                raise ValueError(f"the reference must be a finite (H, W, C) image, got shape {ref.shape}")

    def make_input(self, key, problem):
        if self.reference is None:
            return image_input(self.network, problem)
        h, w, c = problem.image_shape
        ref = jnp.asarray(self.reference.value, jnp.float32)
        if ref.shape[:2] != (h, w):
            ref = jax.image.resize(ref, (h, w, ref.shape[-1]), "bilinear")
        ref = match_channels(ref, c)
        if ref.shape != tuple(self.network.input_shape(h, w)):
            raise ValueError(f"reference of shape {ref.shape} does not fit a network input of shape "
                             f"{self.network.input_shape(h, w)} for {h}x{w} images")
        return ref


def reference_network(image_shape, width: int = 128, scales: int = 5, **kwargs):
    """DIP's skip net taking an image-shaped input (as many channels as the image)."""
    return skip_net(out_channels=image_shape[-1], in_channels=image_shape[-1], width=width, scales=scales, **kwargs)


def load_reference(path: str) -> StaticArray:
    """A reference scan from an image or DICOM file, at its own size (:func:`~dipjax.data.load_image`)."""
    from dipjax.data import load_image

    return StaticArray(load_image(path))


PRESETS = (
    preset(None, "no official code (METHODS.md §9): DIP's Adam lr 0.01, the denoising budget, no input "
           "perturbation (the input is an image)", steps=3000, input_noise_std=0.0),
    preset("mri", "as DIP on MRI: the survey's 5000 iterations for 4× multi-coil MRI (Fig. 1)", steps=5000),
)

register_method(MethodSpec("reference_dip", "Reference-guided DIP", ReferenceGuidedDIP, reference_network, PRESETS, (
    dip.LR, dip.INPUT_NOISE,
    Option("reference", "reference", "reference scan (image or DICOM file) fed as the input; default: the "
           "zero-filled / FBP image init_image(y)", convert=load_reference))))
