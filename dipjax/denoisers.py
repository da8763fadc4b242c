"""Plug-in denoisers ``x ↦ D(x)`` for DeepRED and other plug-and-play schemes, written in JAX so they run on device
inside a compiled step.

:func:`non_local_means` is the fast (integral-image) non-local means of scikit-image's
``denoise_nl_means(fast_mode=True)`` (Darbon et al. 2008; Froment 2014), re-derived so that the two agree: for each
pixel p and each offset t in the ``(2d+1)²`` search window,

    dist(p, t) = max(0, Σ_{q ∈ B(p)} [Σ_c (x(q) − x(q+t))² − 2 C σ²]) / (C h² s²),   w = exp(−dist) if dist ≤ 5 else 0
    D(x)(p) = Σ_t w(p, t) x(p+t) / Σ_t w(p, t)

with reflect padding, where B(p) is scikit-image's integral-image box: the (s−1)×(s−1) pixels with offsets in
(−⌊s/2⌋, ⌊s/2⌋] (not the s×s patch its docstring suggests; tests/test_denoisers.py checks this against scikit-image).
``exp="skimage"`` uses scikit-image's Schraudolph approximation of exp (a few percent off) for bit-level agreement;
the default is the exact exponential.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


def schraudolph_exp(y):
    """``exp(y)`` as scikit-image's ``_fast_exp`` computes it: the float64 whose high 32 bits are
    ``int(1512775 y + 1072632447)`` and low bits zero (Schraudolph 1999), evaluated in float32."""
    hi = (1512775.0 * y + 1072632447.0).astype(jnp.int32)
    exponent = (hi >> 20) & 0x7FF
    mantissa = (hi & 0xFFFFF).astype(jnp.float32) / 2.0**20
    return jnp.where(exponent > 0, (1.0 + mantissa) * jnp.exp2((exponent - 1023).astype(jnp.float32)), 0.0)


def non_local_means(x, h: float = 0.1, sigma: float = 0.0, patch_size: int = 7, patch_distance: int = 11,
                    channelwise: bool = False, exp: str = "exact"):
    """Fast non-local means of one image ``(H, W, C)`` (scikit-image ``denoise_nl_means(fast_mode=True)``).

    ``channelwise=True`` denoises each channel on its own (DeepRED calls scikit-image per channel); otherwise patch
    distances sum over channels, as scikit-image does with ``channel_axis=-1``.
    """
    if x.ndim != 3:
        raise ValueError(f"non_local_means takes one (H, W, C) image, got shape {x.shape}")
    if exp not in ("exact", "skimage"):
        raise ValueError(f"unknown exp {exp!r}; expected 'exact' or 'skimage'")
    if channelwise and x.shape[-1] > 1:
        return jnp.concatenate([non_local_means(x[..., c:c + 1], h, sigma, patch_size, patch_distance, False, exp)
                                for c in range(x.shape[-1])], axis=-1)
    s = patch_size + 1 if patch_size % 2 == 0 else patch_size
    o, d = s // 2, patch_distance
    hh, ww, c = x.shape
    pad = o + d + 1
    if min(hh, ww) <= pad:
        raise ValueError(f"non_local_means needs images larger than {pad} pixels for patch_size {patch_size} and "
                         f"patch_distance {patch_distance}, got {hh}x{ww}")
    xp = jnp.pad(x.astype(jnp.float32), ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    norm = c * h * h * s * s
    var2 = 2.0 * sigma * sigma
    centre = jax.lax.dynamic_slice(xp, (pad - o, pad - o, 0), (hh + 2 * o, ww + 2 * o, c))
    expf = schraudolph_exp if exp == "skimage" else jnp.exp

    def accumulate(carry, shift):
        num, den = carry
        shifted = jax.lax.dynamic_slice(xp, (pad - o + shift[0], pad - o + shift[1], 0), (hh + 2 * o, ww + 2 * o, c))
        diff = jnp.sum(jnp.square(centre - shifted), axis=-1) - c * var2
        integral = jnp.pad(jnp.cumsum(jnp.cumsum(diff, axis=0), axis=1), ((1, 0), (1, 0)))
        # box over offsets (−o, o] around each image pixel: region rows i+1 … i+2o (region row i+o is pixel i)
        box = (integral[2 * o + 1:, 2 * o + 1:] - integral[1:hh + 1, 2 * o + 1:]
               - integral[2 * o + 1:, 1:ww + 1] + integral[1:hh + 1, 1:ww + 1])
        dist = jnp.maximum(box, 0.0) / norm
        w = jnp.where(dist > 5.0, 0.0, expf(-dist))
        neighbour = jax.lax.dynamic_slice(shifted, (o, o, 0), (hh, ww, c))
        return (num + w[..., None] * neighbour, den + w), None

    offsets = jnp.arange(-d, d + 1)
    shifts = jnp.stack(jnp.meshgrid(offsets, offsets, indexing="ij"), -1).reshape(-1, 2)
    (num, den), _ = jax.lax.scan(accumulate, (jnp.zeros((hh, ww, c)), jnp.zeros((hh, ww))), shifts)
    return (num / den[..., None]).astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class NonLocalMeans:
    """DeepRED's denoiser: per-channel fast NLM with ``h = h_factor · σ``, patch 5, search distance 6 (σ in [0, 1]
    units; DeepRED's denoising notebook uses σ_f = 3/255). A frozen dataclass, so a method can hold it statically."""

    sigma: float = 3.0 / 255.0
    h_factor: float = 0.6
    patch_size: int = 5
    patch_distance: int = 6
    channelwise: bool = True
    exp: str = "exact"

    def __call__(self, x):
        return non_local_means(x, self.h_factor * self.sigma, self.sigma, self.patch_size, self.patch_distance,
                               self.channelwise, self.exp)
