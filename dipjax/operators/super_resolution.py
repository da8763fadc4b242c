"""Super-resolution: anti-aliased downsampling by 2, 4 or 8 with the DIP ``lanczos2`` kernel.

The forward model of the DIP super-resolution experiments (Ulyanov et al., CVPR 2018, ``models/downsampler.py``):
replicate-pad the image by ``(K - f) / 2`` pixels, correlate each channel with a ``K x K`` separable Lanczos-2 kernel
(``K = 4 f``, phase 1/2, normalised to sum 1) at stride ``f``. An ``H x W`` image becomes ``H/f x W/f``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dipjax.operators.base import LinearOperator, check_image_shape


@functools.lru_cache(maxsize=None)
def lanczos2_kernel(factor: int) -> np.ndarray:
    """The DIP Lanczos-2 kernel for downsampling by ``factor`` (phase 1/2, size ``4 * factor``, sums to 1).

    Entry ``(i, j)`` is ``L(d_i) L(d_j)`` with ``L(d) = 2 sin(πd) sin(πd/2) / (πd)²`` (``L(0) = 1``) and
    ``d_i = |i + 1/2 - (4f + 2)/2| / f`` for 1-based ``i``, as in DIP's ``get_kernel``.
    """
    size = 4 * factor
    center = (4 * factor + 2) / 2.0
    d = np.abs(np.arange(1, size + 1) + 0.5 - center) / factor
    with np.errstate(invalid="ignore", divide="ignore"):
        taps = np.where(d == 0, 1.0, 2 * np.sin(np.pi * d) * np.sin(np.pi * d / 2) / (np.pi**2 * d**2))
    kernel = np.outer(taps, taps)
    return kernel / kernel.sum()


@struct.dataclass
class SuperResolution(LinearOperator):
    """``y = (k * pad(x))↓f``: Lanczos-2 anti-aliased downsampling by ``factor`` ∈ {2, 4, 8} (any f ≥ 2 works)."""

    in_shape: tuple[int, ...] = struct.field(pytree_node=False)
    factor: int = struct.field(pytree_node=False, default=4)

    def __post_init__(self):
        h, w, _ = check_image_shape(self.in_shape)
        if self.factor < 2 or h % self.factor or w % self.factor:
            raise ValueError(f"super-resolution factor must be >= 2 and divide the image size {h}x{w}, "
                             f"got {self.factor}")

    def __call__(self, x):
        f = self.factor
        channels = x.shape[-1]
        kernel = jnp.asarray(lanczos2_kernel(f), x.dtype)
        pad = (kernel.shape[0] - f) // 2
        xp = jnp.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        weights = jnp.broadcast_to(kernel[:, :, None, None], kernel.shape + (1, channels))
        y = jax.lax.conv_general_dilated(
            xp[None], weights, window_strides=(f, f), padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels,
            precision=jax.lax.Precision.HIGHEST)
        return y[0]

    def init_image(self, y):
        """Bicubic upsampling of ``y`` to the image size (the "bicubic" baseline of the DIP super-resolution
        notebook). It is linear and keeps intensities: a constant image stays that constant, whereas ``Aᵀy`` spreads
        each measurement over the kernel's support and is about ``1/f²`` too dark."""
        return jax.image.resize(y, tuple(self.in_shape), "cubic")
