"""Denoising: the identity forward model ``y = x + n``."""

from __future__ import annotations

from flax import struct

from dipjax.operators.base import LinearOperator, check_image_shape


@struct.dataclass
class Denoising(LinearOperator):
    """``A = I`` on images of shape ``in_shape``."""

    in_shape: tuple[int, ...] = struct.field(pytree_node=False)

    def __post_init__(self):
        check_image_shape(self.in_shape)

    def __call__(self, x):
        return x

    def adjoint(self, y):
        return y

    def init_image(self, y):
        return y
