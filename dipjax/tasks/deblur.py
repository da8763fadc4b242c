"""Deblurring: ``y = k * x + n`` with a Gaussian, uniform or random camera-shake kernel."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from dipjax.operators import Blur, gaussian_kernel, random_motion_kernel, uniform_kernel
from dipjax.tasks.base import TaskConfig, option, register_task, require


@register_task
@dataclasses.dataclass(frozen=True)
class DeblurConfig(TaskConfig):
    name: ClassVar[str] = "deblur"
    summary: ClassVar[str] = "y = k * x + n: Gaussian (DeepRED: std 1.6), uniform or random motion kernel"

    kernel: str = option("gaussian", "blur kernel", choices=("gaussian", "uniform", "motion"))
    kernel_size: int = option(9, "kernel side in pixels")
    blur_std: float = option(1.6, "Gaussian kernel std in pixels")
    boundary: str = option("circular", "image boundary of the convolution", choices=("circular", "valid"))

    def check(self):
        require(self.kernel_size >= 1, "kernel_size", f"must be positive, got {self.kernel_size}")
        require(self.blur_std > 0, "blur_std", f"must be positive, got {self.blur_std}")

    def blur_operator(self, key, shape) -> Blur:
        """The linear blur these options describe (``nonlinear_deblur`` composes it with a camera response)."""
        if self.kernel == "gaussian":
            k = gaussian_kernel(self.kernel_size, self.blur_std)
        elif self.kernel == "uniform":
            k = uniform_kernel(self.kernel_size)
        else:
            k = random_motion_kernel(key, self.kernel_size)
        return Blur(kernel=k, in_shape=shape, boundary=self.boundary)

    def build_operator(self, key, shape):
        return self.blur_operator(key, shape)
