"""Nonlinear deblurring: a linear blur seen through a saturating camera response, ``y = g(k * x)``.

The survey's Figure 5 and aSeqDIP use DPS's nonlinear blur, a blur *network* trained on GOPRO (Tran et al. 2021,
``bkse``) whose weights cannot ship with dipjax. This is a self-contained substitute with the same character — a
blur composed with a nonlinearity, so the forward model has a Jacobian but no adjoint: a camera's tone curve applied
to the blurred irradiance,

    g(u) = (1 − exp(−a u)) / (1 − exp(−a)),

the exponential saturation curve (the response of a detector that saturates, e.g. film's characteristic curve and
the "exposure" tone mapping of graphics). It is smooth and strictly increasing, ``g(0) = 0``, ``g(1) = 1``, concave
for ``a > 0`` (it lifts the shadows like a gamma curve, ``g'(0) = a / (1 − e^{−a})``) and clips highlights softly
(``g(u) → 1 / (1 − e^{−a})`` as ``u → ∞``, ``g'(1) = a e^{−a} / (1 − e^{−a})``). ``a`` is ``response`` (default 2:
slopes 2.31 at black and 0.31 at white); ``a → 0`` is the identity.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from dipjax.operators.base import Operator
from dipjax.operators.blur import Blur


def saturating_response(u: jax.Array, a: float) -> jax.Array:
    """``g(u) = (1 − e^{−a u}) / (1 − e^{−a})`` (the identity for ``a = 0``)."""
    if a == 0:
        return u
    return -jnp.expm1(-a * u) / -jnp.expm1(-a)


def inverse_response(v: jax.Array, a: float) -> jax.Array:
    """``g⁻¹(v) = −log(1 − v (1 − e^{−a})) / a`` for ``v`` clipped to ``[0, 1]`` (so the result is in ``[0, 1]``)."""
    v = jnp.clip(v, 0.0, 1.0)
    if a == 0:
        return v
    return -jnp.log1p(v * jnp.expm1(-a)) / a


@struct.dataclass
class NonlinearBlur(Operator):
    """``y = g(k * x)``: the linear :class:`~dipjax.operators.Blur` ``blur`` (a pytree leaf: its kernel may differ per
    image of a batch) followed by :func:`saturating_response` with strength ``response``."""

    blur: Blur
    response: float = struct.field(pytree_node=False, default=2.0)

    def __post_init__(self):
        if not (self.response >= 0 and math.isfinite(self.response)):
            raise ValueError(f"camera response strength must be a non-negative number, got {self.response}")

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.blur.in_shape)

    def __call__(self, x):
        return saturating_response(self.blur(x), self.response)

    def linearise(self, y: jax.Array) -> jax.Array:
        """``g⁻¹(y)``: the blurred image in linear intensity (measurements clipped to ``[0, 1]`` first)."""
        return inverse_response(y, self.response)

    def init_image(self, y):
        """The blurred image with the response undone, ``g⁻¹(y)`` (padded back to the image size for 'valid')."""
        return self.blur.init_image(self.linearise(y))
