"""Deblurring: convolution with a point-spread function, circular or 'valid' boundary, and the usual kernels."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dipjax.operators.base import LinearOperator, check_image_shape


@struct.dataclass
class Blur(LinearOperator):
    """``y = k * x``, a 2-D convolution of every channel with the kernel ``k`` of shape ``(kh, kw)``.

    ``boundary='circular'`` wraps the image (output ``H x W``; the model of most deblurring benchmarks and the one
    diagonalised by the FFT); ``boundary='valid'`` keeps only the outputs whose support lies inside the image
    (output ``(H - kh + 1) x (W - kw + 1)``; no boundary assumption). The kernel is centred at ``(kh // 2, kw // 2)``
    and is a pytree leaf, so a batch may blur each image with its own kernel.
    """

    kernel: jax.Array
    in_shape: tuple[int, ...] = struct.field(pytree_node=False)
    boundary: str = struct.field(pytree_node=False, default="circular")

    def __post_init__(self):
        h, w, _ = check_image_shape(self.in_shape)
        if self.boundary not in ("circular", "valid"):
            raise ValueError(f"blur boundary must be 'circular' or 'valid', got {self.boundary!r}")
        shape = getattr(self.kernel, "shape", None)  # leaves may be placeholders while JAX rebuilds the pytree
        if shape is not None and (len(shape) < 2 or shape[-2] > h or shape[-1] > w):  # leading axes: a batch
            raise ValueError(f"blur kernel must be 2-D and no larger than the image {h}x{w}, got {shape}")

    def __call__(self, x):
        kh, kw = self.kernel.shape
        channels = x.shape[-1]
        if self.boundary == "circular":
            ph, pw = kh - 1 - kh // 2, kw - 1 - kw // 2
            x = jnp.pad(x, ((ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)), mode="wrap")
        flipped = self.kernel[::-1, ::-1].astype(x.dtype)  # convolution = correlation with the flipped kernel
        weights = jnp.broadcast_to(flipped[:, :, None, None], (kh, kw, 1, channels))
        y = jax.lax.conv_general_dilated(
            x[None], weights, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=channels, precision=jax.lax.Precision.HIGHEST)
        return y[0]

    def init_image(self, y):
        """The blurred image itself: ``y`` for the circular boundary, edge-padded back to the image size for
        'valid'."""
        if self.boundary == "circular":
            return y
        kh, kw = self.kernel.shape[-2:]
        ph, pw = kh - 1 - kh // 2, kw - 1 - kw // 2
        return jnp.pad(y, ((ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)), mode="edge")


def gaussian_kernel(size: int, std: float) -> jax.Array:
    """Isotropic Gaussian PSF on a ``size x size`` grid, normalised to sum 1 (DeepRED deblurring: 25, std 1.6)."""
    if size < 1 or std <= 0:
        raise ValueError(f"Gaussian kernel needs size >= 1 and std > 0, got size={size}, std={std}")
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (r / std) ** 2)
    k = np.outer(g, g)
    return jnp.asarray(k / k.sum(), jnp.float32)


def uniform_kernel(size: int) -> jax.Array:
    """Box PSF of side ``size`` (DeepRED deblurring: 9 x 9)."""
    if size < 1:
        raise ValueError(f"uniform kernel needs size >= 1, got {size}")
    return jnp.full((size, size), 1.0 / size**2, jnp.float32)


def motion_kernel(size: int, length: float, angle_deg: float) -> jax.Array:
    """Linear camera motion: a centred segment of ``length`` pixels at ``angle_deg``, anti-aliased by
    supersampling (16 samples per pixel along the segment) and normalised to sum 1."""
    if size < 1 or not 0 < length <= size:
        raise ValueError(f"motion kernel needs 0 < length <= size, got size={size}, length={length}")
    t = np.linspace(-0.5, 0.5, int(16 * max(length, 1)) + 1) * (length - 1)
    angle = np.deg2rad(angle_deg)
    return _rasterise(size, t * np.cos(angle), -t * np.sin(angle))


def random_motion_kernel(key, size: int, steps: int = 64, momentum: float = 0.7) -> jax.Array:
    """Random camera-shake trajectory (a random walk with momentum, in the spirit of Boracchi & Foi 2012),
    rasterised with bilinear splatting into a ``size x size`` PSF that sums to 1."""
    if size < 3:
        raise ValueError(f"random motion kernel needs size >= 3, got {size}")
    kicks = np.asarray(jax.random.normal(key, (steps, 2)), np.float64)
    vel = np.zeros(2)
    pos = np.zeros((steps, 2))
    for i in range(1, steps):
        vel = momentum * vel + (1 - momentum) * kicks[i]
        pos[i] = pos[i - 1] + vel
    pos -= pos.mean(0)
    extent = np.abs(pos).max()
    if extent > 0:
        pos *= (size - 1) / 2 * 0.9 / extent
    return _rasterise(size, pos[:, 0], pos[:, 1])


def _rasterise(size: int, dx: np.ndarray, dy: np.ndarray) -> jax.Array:
    k = np.zeros((size, size))
    cx = cy = (size - 1) / 2
    for x, y in zip(cx + dx, cy + dy):
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for xi, yi, w in ((x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                          (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)):
            if 0 <= xi < size and 0 <= yi < size:
                k[yi, xi] += w
    return jnp.asarray(k / k.sum(), jnp.float32)
