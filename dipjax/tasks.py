"""Named inverse problems for the CLI and the experiment scripts: build the operator, simulate the measurements,
and render the measurements as an image (for ``degraded.png`` and ``psnr_input``)."""

from __future__ import annotations

import dataclasses
import zlib

import jax
import jax.numpy as jnp

from dipjax import operators as ops
from dipjax.problem import Problem, make_problem

TASKS = ("denoise", "inpaint", "sr", "deblur", "cs")
NOISE_CHANNELS = ("independent", "shared")


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """Static description of a task; defaults follow the DIP papers where they exist."""

    task: str = "denoise"
    sigma: float = 25.0  # noise std on the 0-255 scale
    noise_channels: str = "independent"  # independent | shared (one draw per pixel for all channels: Deep Decoder)
    mask: str = "random"  # inpainting: random | box | text
    keep: float = 0.5  # inpainting: fraction of observed pixels (random mask)
    factor: int = 4  # super-resolution factor
    kernel: str = "gaussian"  # deblurring: gaussian | uniform | motion
    kernel_size: int = 9
    blur_std: float = 1.6
    boundary: str = "circular"
    ratio: float = 0.25  # compressed sensing m/n

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; expected one of {', '.join(TASKS)}")
        if self.sigma < 0:
            raise ValueError(f"noise level sigma must be non-negative, got {self.sigma}")
        if self.noise_channels not in NOISE_CHANNELS:
            raise ValueError(f"noise_channels must be one of {', '.join(NOISE_CHANNELS)}, got {self.noise_channels!r}")


def default_input_noise(config: TaskConfig) -> float:
    """DIP's input perturbation σ_p per task (DIP notebooks): 1/30 denoising (1/20 from σ = 50 up), 0.03 inpainting
    and ×4 super-resolution, 0.05 for ×8; other tasks use the denoising value."""
    if config.task == "sr":
        return 0.05 if config.factor >= 8 else 0.03
    if config.task == "inpaint":
        return 0.03
    return 1.0 / 20.0 if config.sigma >= 50 else 1.0 / 30.0


def build_operator(config: TaskConfig, key, shape):
    """The forward model of ``config`` for images of ``shape``; ``key`` draws masks, motion and CS matrices."""
    h, w, c = shape
    if config.task == "denoise":
        return ops.Denoising(in_shape=shape)
    if config.task == "inpaint":
        if config.mask == "random":
            mask = ops.random_mask(key, h, w, config.keep)
        elif config.mask == "box":
            mask = ops.box_mask(h, w, max(1, int(round(min(h, w) * 190 / 512))))
        elif config.mask == "text":
            mask = ops.text_mask(h, w)
        else:
            raise ValueError(f"unknown inpainting mask {config.mask!r}; expected random, box or text")
        return ops.Inpainting.from_mask(mask, c)
    if config.task == "sr":
        return ops.SuperResolution(in_shape=shape, factor=config.factor)
    if config.task == "deblur":
        if config.kernel == "gaussian":
            k = ops.gaussian_kernel(config.kernel_size, config.blur_std)
        elif config.kernel == "uniform":
            k = ops.uniform_kernel(config.kernel_size)
        elif config.kernel == "motion":
            k = ops.random_motion_kernel(key, config.kernel_size)
        else:
            raise ValueError(f"unknown blur kernel {config.kernel!r}; expected gaussian, uniform or motion")
        return ops.Blur(kernel=k, in_shape=shape, boundary=config.boundary)
    return ops.CompressedSensing.gaussian(key, shape, config.ratio)


def degradation_key(seed: int, name: str):
    """The key that draws an image's operator and noise: a function of the seed *and* the image name, so an image
    is degraded identically whether it runs alone or in a batch, and different images get different noise."""
    return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)


def simulate(config: TaskConfig, key, x_true) -> Problem:
    """Build the operator and simulate ``y = A x + n`` (Gaussian noise σ/255, independent per channel or shared by
    all channels of a pixel as ``config.noise_channels`` says; clipped to [0, 1] for denoising, as in the DIP
    notebooks)."""
    k_op, k_noise = jax.random.split(key)
    op = build_operator(config, k_op, tuple(x_true.shape))
    sigma = config.sigma / 255.0
    clip = (0.0, 1.0) if config.task == "denoise" else None
    shared = config.noise_channels == "shared"
    noise = (lambda k, y: ops.gaussian_noise(k, y, sigma, clip, shared)) if sigma > 0 else None
    return make_problem(k_noise, op, x_true, noise)


def degraded_image(problem: Problem) -> jax.Array:
    """The measurements shown as an image of the original size: ``y`` itself where it is one, cubic upsampling for
    super-resolution, edge padding for 'valid' blur, ``A^T y`` for compressed sensing."""
    op, y = problem.operator, problem.y
    shape = tuple(op.in_shape)
    if isinstance(op, ops.SuperResolution):
        return jnp.clip(jax.image.resize(y, shape, "cubic"), 0, 1)
    if isinstance(op, ops.Blur) and op.boundary == "valid":
        kh, kw = op.kernel.shape[-2:]
        ph, pw = kh - 1 - kh // 2, kw - 1 - kw // 2
        return jnp.pad(y, ((ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)), mode="edge")
    if isinstance(op, ops.CompressedSensing):
        return jnp.clip(op.adjoint(y), 0, 1)
    return jnp.clip(y, 0, 1)
