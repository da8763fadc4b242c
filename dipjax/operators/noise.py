"""Noise models as pure functions of ``(key, y)``: Gaussian, Poisson, salt-and-pepper."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


def gaussian_noise(key, y, sigma: float, clip: tuple[float, float] | None = None, shared_channels: bool = False):
    """``y + σ n`` with ``n ~ N(0, I)`` (complex data: independent real and imaginary parts, each ``N(0, σ²/2)``).

    ``sigma`` is in the units of ``y`` (images: σ = 25/255 for the usual "σ = 25"). ``clip=(0, 1)`` reproduces the DIP
    notebooks, which clip the noisy image to the valid range. ``shared_channels=True`` draws one noise value per pixel
    and adds it to every channel (last axis), as the Deep Decoder denoising notebook does for its σ = 25 results.
    """
    if sigma < 0:
        raise ValueError(f"noise level must be non-negative, got {sigma}")
    shape = y.shape[:-1] + (1,) if shared_channels else y.shape
    if jnp.iscomplexobj(y):
        kr, ki = jax.random.split(key)
        n = (jax.random.normal(kr, shape) + 1j * jax.random.normal(ki, shape)) / jnp.sqrt(2.0)
    else:
        n = jax.random.normal(key, shape, y.dtype)
    out = y + sigma * n.astype(y.dtype)
    return out if clip is None else jnp.clip(out, *clip)


@dataclasses.dataclass(frozen=True)
class GaussianNoise:
    """A Gaussian noise model as a value: ``noise(key, y)`` calls :func:`gaussian_noise` with these settings. Tasks
    declare their measurement noise with it (``sigma`` in the units of ``y``)."""

    sigma: float
    clip: tuple[float, float] | None = None
    shared_channels: bool = False

    def __call__(self, key, y):
        return gaussian_noise(key, y, self.sigma, self.clip, self.shared_channels)


def poisson_noise(key, y, peak: float):
    """Photon-count noise ``Poisson(peak · y) / peak`` for non-negative ``y``; larger ``peak`` means less noise."""
    if peak <= 0:
        raise ValueError(f"Poisson peak must be positive, got {peak}")
    return jax.random.poisson(key, peak * jnp.clip(y, 0, None)).astype(y.dtype) / peak


def salt_and_pepper(key, y, amount: float, salt_vs_pepper: float = 0.5, low: float = 0.0, high: float = 1.0):
    """Replace a fraction ``amount`` of entries by ``high`` (salt, probability ``salt_vs_pepper``) or ``low``.

    Follows ``skimage.util.random_noise(mode='s&p')``, which DOP uses: each array entry (pixel *and* channel) is
    corrupted independently.
    """
    if not 0 <= amount <= 1 or not 0 <= salt_vs_pepper <= 1:
        raise ValueError(f"salt-and-pepper amount and ratio must be in [0, 1], got {amount}, {salt_vs_pepper}")
    k_hit, k_salt = jax.random.split(key)
    hit = jax.random.bernoulli(k_hit, amount, y.shape)
    salt = jax.random.bernoulli(k_salt, salt_vs_pepper, y.shape)
    return jnp.where(hit, jnp.where(salt, high, low).astype(y.dtype), y)
