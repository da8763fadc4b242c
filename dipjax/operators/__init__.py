"""Forward models ``y = A x`` (pytree dataclasses with ``__call__`` and ``adjoint``) and noise models."""

from dipjax.operators.base import LinearOperator
from dipjax.operators.blur import Blur, gaussian_kernel, motion_kernel, random_motion_kernel, uniform_kernel
from dipjax.operators.compressed_sensing import CompressedSensing
from dipjax.operators.denoising import Denoising
from dipjax.operators.inpainting import Inpainting, box_mask, random_mask, text_mask
from dipjax.operators.noise import gaussian_noise, poisson_noise, salt_and_pepper
from dipjax.operators.super_resolution import SuperResolution, lanczos2_kernel

__all__ = [
    "LinearOperator", "Denoising", "Inpainting", "SuperResolution", "Blur", "CompressedSensing",
    "random_mask", "box_mask", "text_mask", "lanczos2_kernel",
    "gaussian_kernel", "uniform_kernel", "motion_kernel", "random_motion_kernel",
    "gaussian_noise", "poisson_noise", "salt_and_pepper",
]
