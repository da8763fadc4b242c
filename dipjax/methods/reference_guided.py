"""Reference-guided DIP (Zhao, Zhao, Gan, Sensors 2020; the "reference-guided DIP" baseline of SG-DIP and aSeqDIP):

    θ* = argmin_θ  ‖A f_θ(x_ref) − y‖²,    x* = f_θ*(x_ref)

DIP whose fixed input is a given reference image (a prior scan of similar anatomy or contrast) instead of random
noise; no pre-training, no training set. No official code exists (METHODS.md §9); dipjax keeps DIP's mean squared
error and Adam, with no input perturbation by default. The network's input channels must equal the reference's.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from dipjax.methods.base import StaticArray
from dipjax.methods.dip import DIP


@dataclasses.dataclass(frozen=True)
class ReferenceGuidedDIP(DIP):
    """DIP with ``z = reference`` (an ``(H, W, C_in)`` array wrapped in :class:`StaticArray`, or a plain array)."""

    reference: StaticArray | None = None
    input_noise_std: float = 0.0
    name: str = "reference_dip"

    def __post_init__(self):
        super().__post_init__()
        if self.reference is None:
            raise ValueError("ReferenceGuidedDIP needs a reference image")
        if not isinstance(self.reference, StaticArray):
            object.__setattr__(self, "reference", StaticArray(self.reference))
        ref = self.reference.value
        if ref.ndim != 3 or not np.all(np.isfinite(ref)):
            raise ValueError(f"the reference must be a finite (H, W, C) image, got shape {ref.shape}")

    def make_input(self, key, problem):
        ref = jnp.asarray(self.reference.value, jnp.float32)
        h, w, _ = problem.image_shape
        if ref.shape[:2] != (h, w) or ref.shape != tuple(self.network.input_shape(h, w)):
            raise ValueError(f"reference of shape {ref.shape} does not fit a network input of shape "
                             f"{self.network.input_shape(h, w)} for {h}x{w} images")
        return ref
