"""Super-resolution: ``y = (k * x)↓f + n`` with DIP's Lanczos-2 anti-aliasing kernel."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from dipjax.operators import SuperResolution
from dipjax.tasks.base import TaskConfig, option, register_task


@register_task
@dataclasses.dataclass(frozen=True)
class SuperResolutionConfig(TaskConfig):
    name: ClassVar[str] = "sr"
    summary: ClassVar[str] = "y = (k * x)↓f + n, DIP's Lanczos-2 downsampler by `--factor`"

    factor: int = option(4, "super-resolution factor", choices=(2, 4, 8))

    def build_operator(self, key, shape):
        return SuperResolution(in_shape=shape, factor=self.factor)
