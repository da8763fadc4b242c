"""Forward models ``y = A x`` (pytree dataclasses with ``__call__``, ``init_image``, ``display``, ``vjp`` and, when
linear, ``adjoint``; see :mod:`dipjax.operators.base` for the contract and the complex-image convention) and noise models."""

from dipjax.operators.base import LinearOperator, Operator, from_complex, to_complex
from dipjax.operators.blur import Blur, gaussian_kernel, motion_kernel, random_motion_kernel, uniform_kernel
from dipjax.operators.compressed_sensing import CompressedSensing
from dipjax.operators.ct import ParallelBeamCT, fbp, post_log_poisson, view_angles
from dipjax.operators.denoising import Denoising
from dipjax.operators.inpainting import Inpainting, box_mask, random_mask, text_mask
from dipjax.operators.mri import MultiCoilMRI, birdcage_maps, cartesian_mask, espirit_maps, fft2c, ifft2c, rss
from dipjax.operators.nonlinear_blur import NonlinearBlur, inverse_response, saturating_response
from dipjax.operators.noise import GaussianNoise, gaussian_noise, poisson_noise, salt_and_pepper
from dipjax.operators.phase_retrieval import PhaseRetrieval
from dipjax.operators.super_resolution import SuperResolution, lanczos2_kernel

__all__ = [
    "Operator", "LinearOperator", "to_complex", "from_complex", "Denoising", "Inpainting", "SuperResolution", "Blur", "CompressedSensing",
    "MultiCoilMRI", "fft2c", "ifft2c", "rss", "cartesian_mask", "birdcage_maps", "espirit_maps",
    "ParallelBeamCT", "fbp", "view_angles", "post_log_poisson", "PhaseRetrieval", "NonlinearBlur",
    "saturating_response", "inverse_response",
    "random_mask", "box_mask", "text_mask", "lanczos2_kernel",
    "gaussian_kernel", "uniform_kernel", "motion_kernel", "random_motion_kernel",
    "GaussianNoise", "gaussian_noise", "poisson_noise", "salt_and_pepper",
]
