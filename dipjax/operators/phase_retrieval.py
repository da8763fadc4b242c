"""Fourier phase retrieval: the magnitude of the oversampled Fourier transform, ``y = |F pad(x)|`` or ``|F pad(x)|²``.

The classic nonlinear inverse problem of coherent diffraction imaging, and the phase-retrieval task of DPS (Chung et
al. 2023, ``guided_diffusion/measurements.py``: ``PhaseRetrievalOperator`` pads a 256² image by 64 px on each side —
their ``oversample: 2.0`` means ``pad = oversample / 8 · 256`` — and measures ``|fft2c(padded)|``). Here
``oversampling`` is the padded side over the image side (DPS: 384 / 256 = 1.5); the default 2 (``pad = H / 2`` on each
side) is the classical condition for a unique solution of 2-D real images (Miao, Sayre & Chapman 1998: more than twice
as many measurements as unknowns). Each channel is an independent measurement, with the centred unitary FFT
:func:`~dipjax.operators.mri.fft2c`, so ``Σ y² = ||x||²`` for amplitudes (Parseval).

The measurements do not change under the *trivial ambiguities*: a global sign (the phase of a real image),
a circular translation of ``pad(x)`` and the conjugate flip ``x(−r)`` (the 180° rotation); every estimate is
evaluated modulo them by :func:`dipjax.metrics.psnr_up_to_ambiguity`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from dipjax.operators.base import Operator, check_image_shape
from dipjax.operators.mri import fft2c, ifft2c

MEASURES = ("amplitude", "intensity")
_AXES = (0, 1)


def safe_abs(z: jax.Array) -> jax.Array:
    """``|z|`` whose derivative at ``z = 0`` is 0 rather than NaN (the amplitude's subgradient there)."""
    p = jnp.real(z) ** 2 + jnp.imag(z) ** 2
    positive = p > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, p, 1.0)), 0.0)


def pad_width(size: int, oversampling: float) -> int:
    """Zero padding on each side so that the padded side is ``oversampling`` times ``size`` (rounded)."""
    return int(round((oversampling - 1.0) * size / 2.0))


@struct.dataclass
class PhaseRetrieval(Operator):
    """``y = |F pad(x)|`` (``measure='amplitude'``) or ``|F pad(x)|²`` (``'intensity'``) per channel, ``F`` the
    centred unitary 2-D FFT and ``pad`` zeros on every side (``(H + 2p, W + 2p, C)`` measurements)."""

    in_shape: tuple[int, ...] = struct.field(pytree_node=False)
    pad: int = struct.field(pytree_node=False)
    measure: str = struct.field(pytree_node=False, default="amplitude")
    #: Power iterations of the spectral initialiser (:meth:`init_image`).
    spectral_iterations: int = struct.field(pytree_node=False, default=50)

    def __post_init__(self):
        check_image_shape(self.in_shape)
        if self.pad < 0:
            raise ValueError(f"phase retrieval padding must be non-negative, got {self.pad}")
        if self.measure not in MEASURES:
            raise ValueError(f"phase retrieval measures {' or '.join(MEASURES)}, got {self.measure!r}")

    @classmethod
    def oversampled(cls, in_shape, oversampling: float = 2.0, measure: str = "amplitude") -> "PhaseRetrieval":
        """The operator whose padded side is ``oversampling`` times the image's (at least 1)."""
        if not oversampling >= 1.0:
            raise ValueError(f"phase retrieval oversampling must be at least 1, got {oversampling}")
        return cls(in_shape=tuple(in_shape), pad=pad_width(min(in_shape[:2]), oversampling), measure=measure)

    def padded(self, x: jax.Array) -> jax.Array:
        """``pad(x)``: the image in the middle of a zero frame ``p`` pixels wide."""
        p = self.pad
        return jnp.pad(x, ((p, p), (p, p), (0, 0)))

    def crop(self, u: jax.Array) -> jax.Array:
        """The adjoint of :meth:`padded`: the image window of a padded array."""
        h, w = self.in_shape[:2]
        return u[self.pad : self.pad + h, self.pad : self.pad + w]

    def fourier(self, x: jax.Array) -> jax.Array:
        """``F pad(x)``, complex, per channel."""
        return fft2c(self.padded(x), axes=_AXES)

    def __call__(self, x):
        amplitude = safe_abs(self.fourier(x))
        return amplitude if self.measure == "amplitude" else amplitude**2

    def amplitudes(self, y: jax.Array) -> jax.Array:
        """Measured Fourier amplitudes ``|F pad(x)|`` (square roots of non-negative parts of intensities)."""
        return y if self.measure == "amplitude" else jnp.sqrt(jnp.maximum(y, 0.0))

    def init_image(self, y):
        """The spectral initialiser (Netrapalli, Jain & Sanghavi 2013; Candès, Li & Soltanolkotabi 2015): per
        channel, the leading eigenvector of ``Σ_k |y_k|² a_k a_kᴴ = crop F⁻¹ diag(|y|²) F pad`` restricted to real
        images, by power iteration, signed to a non-negative mean and scaled to ``||x|| = ||F pad x||`` (Parseval)."""
        intensity = jnp.square(self.amplitudes(y))

        def one_channel(w):
            def apply(v):
                return self.crop(jnp.real(ifft2c(w[..., None] * fft2c(self.padded(v), axes=_AXES), axes=_AXES)))

            def power(_, v):
                v = apply(v)
                return v / jnp.maximum(jnp.linalg.norm(v), 1e-30)

            v0 = jnp.ones(self.in_shape[:2] + (1,), intensity.dtype)
            v = jax.lax.fori_loop(0, self.spectral_iterations, power, v0 / jnp.linalg.norm(v0))
            v = v * jnp.where(jnp.sum(v) < 0, -1.0, 1.0)
            return (v * jnp.sqrt(jnp.sum(w)))[..., 0]

        return jnp.moveaxis(jax.vmap(one_channel, in_axes=-1)(intensity), 0, -1)
