"""Nonlinear deblurring: ``y = g(k * x) + n``, the blur of ``deblur`` seen through a saturating camera response (a
self-contained substitute for DPS's learned GOPRO blur, whose weights cannot ship; see
:mod:`dipjax.operators.nonlinear_blur`)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from dipjax.operators import NonlinearBlur
from dipjax.tasks.base import option, register_task, require
from dipjax.tasks.deblur import DeblurConfig


@register_task
@dataclasses.dataclass(frozen=True)
class NonlinearDeblurConfig(DeblurConfig):
    name: ClassVar[str] = "nonlinear_deblur"
    summary: ClassVar[str] = ("y = g(k * x) + n: the kernels of `deblur` through the camera response "
                              "g(u) = (1 − e^(−a u)) / (1 − e^(−a)) (a substitute for DPS's learned blur)")

    sigma: float = option(6.375, "Gaussian noise std on the 0-255 scale (DPS: σ_y = 0.05 on [−1, 1] = 6.375/255)")
    response: float = option(2.0, "strength a of the saturating camera response (0: linear)")

    def check(self):
        super().check()
        require(0 <= self.response <= 20, "response", f"must be in [0, 20], got {self.response}")

    def build_operator(self, key, shape):
        return NonlinearBlur(blur=self.blur_operator(key, shape), response=self.response)
