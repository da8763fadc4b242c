"""A toy task registered in this one module, with no other library file touched: ``--task flip`` (the image mirrored
and darkened, plus noise). tests/test_tasks.py checks that the CLI, the registry and method presets pick it up."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from flax import struct

from dipjax.operators import LinearOperator
from dipjax.tasks import TaskConfig, option, register_task, require


@struct.dataclass
class Flip(LinearOperator):
    """``y = gain · x`` mirrored along ``axis`` (0: rows, 1: columns)."""

    in_shape: tuple[int, ...] = struct.field(pytree_node=False)
    axis: int = struct.field(pytree_node=False, default=1)
    gain: float = struct.field(pytree_node=False, default=0.5)

    def __call__(self, x):
        return self.gain * (x[::-1] if self.axis == 0 else x[:, ::-1])

    def init_image(self, y):
        return self.adjoint(y) / self.gain**2


@register_task
@dataclasses.dataclass(frozen=True)
class FlipConfig(TaskConfig):
    name: ClassVar[str] = "flip"
    summary: ClassVar[str] = "y = g · mirror(x) + n (a toy task)"

    direction: str = option("horizontal", "mirror direction", choices=("horizontal", "vertical"))
    gain: float = option(0.5, "brightness gain g")

    def check(self):
        require(0 < self.gain <= 1, "gain", f"must be in (0, 1], got {self.gain}")

    def build_operator(self, key, shape):
        return Flip(in_shape=shape, axis=1 if self.direction == "horizontal" else 0, gain=self.gain)
