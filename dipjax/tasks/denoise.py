"""Denoising: ``y = x + n``, the noisy image clipped to [0, 1] as in the DIP notebooks."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from dipjax.operators import Denoising
from dipjax.tasks.base import TaskConfig, register_task


@register_task
@dataclasses.dataclass(frozen=True)
class DenoiseConfig(TaskConfig):
    name: ClassVar[str] = "denoise"
    summary: ClassVar[str] = "y = x + n, Gaussian noise of std `--sigma`/255, clipped to [0, 1]"

    def build_operator(self, key, shape):
        return Denoising(in_shape=shape)

    def noise_clip(self):
        return (0.0, 1.0)
