"""Compressed sensing: ``y = A vec(x) + n`` with a dense Gaussian matrix (the setting of survey Theorem 1)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from dipjax.operators import CompressedSensing
from dipjax.tasks.base import TaskConfig, option, register_task, require


@register_task
@dataclasses.dataclass(frozen=True)
class CompressedSensingConfig(TaskConfig):
    name: ClassVar[str] = "cs"
    summary: ClassVar[str] = "y = A vec(x) + n, A Gaussian with entries N(0, 1/m), m = `--ratio`·n"

    ratio: float = option(0.25, "measurements per unknown, m/n")

    def check(self):
        require(0 < self.ratio <= 1, "ratio", f"must be in (0, 1], got {self.ratio}")

    def build_operator(self, key, shape):
        return CompressedSensing.gaussian(key, shape, self.ratio)
