"""The contract every forward model in dipjax follows.

An operator is a frozen pytree dataclass (``flax.struct.dataclass``): its data (masks, kernels, matrices) are pytree
leaves, so a batch of problems can carry a different mask per image and ``jax.vmap`` maps over them; its shapes are
static fields. ``op(x)`` applies the forward model to one image ``x`` of shape ``op.in_shape`` (``(H, W, C)``).

Linear operators also provide ``op.adjoint(y)``. The default adjoint is the exact transpose that
``jax.linear_transpose`` derives from ``__call__``; an operator overrides it with a closed form where that is cheaper.
Every linear operator is tested for ``<A x, y> = <x, A^T y>`` and against a dense matrix (``tests/test_operators.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


class LinearOperator:
    """Mixin for linear forward models ``y = A x`` (the deepinv ``physics`` / scico ``LinearOperator`` shape).

    Subclasses are ``flax.struct.dataclass`` es with a static ``in_shape`` field and implement ``__call__``.
    """

    in_shape: tuple[int, ...]

    def __call__(self, x: jax.Array) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of ``A x`` for one image, found by abstract evaluation (no FLOPs)."""
        return tuple(jax.eval_shape(self, jax.ShapeDtypeStruct(self.in_shape, jnp.float32)).shape)

    def adjoint(self, y: jax.Array) -> jax.Array:
        """``A^T y`` (``A^H y`` for complex data), the exact transpose of ``__call__``."""
        real_dtype = jnp.zeros((), y.dtype).real.dtype
        transpose = jax.linear_transpose(self.__call__, jax.ShapeDtypeStruct(self.in_shape, real_dtype))
        (x,) = transpose(y)
        return x

    def normal(self, x: jax.Array) -> jax.Array:
        """``A^T A x``, the operator of the NTK filter recursion and of gradient steps on ``||A x - y||^2 / 2``."""
        return self.adjoint(self(x))


def check_image_shape(shape, what: str = "image") -> tuple[int, int, int]:
    """Validate an ``(H, W, C)`` shape and return it as a tuple of ints; raise ``ValueError`` saying what is wrong."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) <= 0:
        raise ValueError(f"{what} shape must be (height, width, channels) with positive sizes, got {shape}")
    return shape
