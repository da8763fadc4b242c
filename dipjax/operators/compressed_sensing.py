"""Compressed sensing: ``y = A vec(x)`` with a dense Gaussian measurement matrix."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from dipjax.operators.base import LinearOperator, check_image_shape

#: Largest Gaussian matrix :meth:`CompressedSensing.gaussian` builds (entries); 2**28 float32 is 1 GiB.
MAX_MATRIX_ENTRIES = 2**28


@struct.dataclass
class CompressedSensing(LinearOperator):
    """``y = A vec(x)`` with ``A`` of shape ``(m, H·W·C)``; ``vec`` flattens in C order (row, column, channel).

    The Heckel–Soltanolkotabi setting of survey Theorem 1 uses i.i.d. Gaussian ``A`` with entries ``N(0, 1/m)``,
    which :meth:`gaussian` draws. A dense matrix costs ``m·n`` floats: fine for the 32²–64² images of theory work,
    not for 256² RGB (``MAX_MATRIX_ENTRIES`` guards against an accidental multi-GiB allocation).
    """

    matrix: jax.Array
    in_shape: tuple[int, ...] = struct.field(pytree_node=False)

    def __post_init__(self):
        n = math.prod(check_image_shape(self.in_shape))
        shape = getattr(self.matrix, "shape", None)  # leaves may be placeholders while JAX rebuilds the pytree
        if shape is not None and (len(shape) < 2 or shape[-1] != n):  # leading axes: a batch
            raise ValueError(f"measurement matrix must have shape (m, {n}) for images {self.in_shape}, got {shape}")

    def __call__(self, x):
        return jnp.matmul(self.matrix, x.reshape(-1), precision=jax.lax.Precision.HIGHEST)

    def adjoint(self, y):
        return jnp.matmul(self.matrix.T, y, precision=jax.lax.Precision.HIGHEST).reshape(self.in_shape)

    @classmethod
    def gaussian(cls, key, in_shape, ratio: float, dtype=jnp.float32) -> "CompressedSensing":
        """Draw ``m = round(ratio · n)`` Gaussian measurements with entries ``N(0, 1/m)``."""
        n = math.prod(check_image_shape(in_shape))
        if not 0 < ratio <= 1:
            raise ValueError(f"compressed-sensing ratio m/n must be in (0, 1], got {ratio}")
        m = max(1, round(ratio * n))
        if m * n > MAX_MATRIX_ENTRIES:
            raise ValueError(f"a dense {m}x{n} Gaussian matrix is too large ({m * n * 4 / 2**30:.1f} GiB); "
                             f"use a smaller image or ratio")
        matrix = jax.random.normal(key, (m, n), dtype) / jnp.sqrt(jnp.asarray(m, dtype))
        return cls(matrix=matrix, in_shape=tuple(in_shape))
