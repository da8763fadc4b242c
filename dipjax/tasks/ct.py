"""Sparse-view parallel-beam CT: ``y = R_θ x`` (+ noise) at ``views`` angles, in scikit-image's geometry.

The survey's setting is noiseless post-log line integrals at 18 views (``sigma = 0``, ``photons = 0``); ``photons`` >
0 simulates post-log Poisson counts ``y = −log(N / I₀) / μ``, ``N ~ Poisson(I₀ e^{−μ R x})``, with μ the attenuation
per pixel of an image value 1, and ``sigma`` adds Gaussian noise (on the 0–255 scale of the image) to the line
integrals. Views are equispaced over 180° or drawn from 180 equispaced angles. The sinogram is computed from the image
resampled on a grid ``oversample`` times finer, with detectors ``oversample`` times narrower, then binned to the
reconstruction's detectors and rescaled to its pixel size, so the data are not made by the operator that
reconstructs them (the inverse crime); the residual of the ground truth is a few percent of the data.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from dipjax.operators import ParallelBeamCT, post_log_poisson, view_angles
from dipjax.operators.noise import gaussian_noise
from dipjax.problem import Problem
from dipjax.tasks.base import TaskConfig, option, register_task, require


def fine_grid_sinogram(image, angles, oversample: int) -> np.ndarray:
    """The sinogram of ``image`` (N, N) for :class:`ParallelBeamCT` (``circle=False``) computed on a grid
    ``oversample`` times finer (bicubic resampling) and binned back: each coarse detector averages the fine detectors
    over its width (trapezoidal weights), divided by ``oversample`` (line integrals in coarse pixel lengths)."""
    from skimage.transform import resize

    n = image.shape[0]
    f = int(oversample)
    coarse = ParallelBeamCT(angles=jnp.asarray(angles), in_shape=(n, n, 1))
    if f == 1:
        return np.asarray(coarse(jnp.asarray(image)[..., None]))
    fine_img = resize(np.asarray(image, np.float64), (f * n, f * n), order=3, mode="reflect", anti_aliasing=False)
    fine = np.asarray(ParallelBeamCT(angles=jnp.asarray(angles), in_shape=(f * n, f * n, 1))(
        jnp.asarray(fine_img, jnp.float32)[..., None]), np.float64)
    d, d_fine = coarse.detectors, fine.shape[0]
    # detector j sits at (j − d // 2) coarse pixels; fine detector k at (k − d_fine // 2) / f coarse pixels
    offsets = np.arange(-f, f + 1)
    weights = (f - np.abs(offsets)).astype(np.float64)
    weights /= weights.sum()
    out = np.zeros((d, fine.shape[1]))
    for j in range(d):
        k = d_fine // 2 + f * (j - d // 2) + offsets
        ok = (k >= 0) & (k < d_fine)
        out[j] = weights[ok] @ fine[k[ok]]
    return out / f


@register_task
@dataclasses.dataclass(frozen=True)
class CTConfig(TaskConfig):
    name: ClassVar[str] = "ct"
    summary: ClassVar[str] = ("y = R_θ x: sparse-view parallel-beam CT (scikit-image's Radon geometry), noiseless "
                              "post-log by default, or post-log Poisson")
    input_channels: ClassVar[int] = 1
    operator_channels: ClassVar[int] = 1

    sigma: float = option(0.0, "Gaussian noise std of the line integrals, on the 0-255 scale of the image")
    views: int = option(18, "number of projection angles")
    view_selection: str = option("equispaced", "angles equispaced over 180°, or drawn from 180 equispaced ones",
                                 choices=("equispaced", "random"))
    photons: float = option(0.0, "incident photons I₀ per detector for post-log Poisson noise (0: none)")
    attenuation: float = option(0.02, "attenuation μ per pixel of an image value 1 (Poisson model)")
    oversample: int = option(2, "simulate the sinogram on a grid this many times finer (1: on the reconstruction grid)")

    def check(self):
        require(1 <= self.views <= 720, "views", f"must be between 1 and 720, got {self.views}")
        require(self.photons >= 0, "photons", f"must be non-negative, got {self.photons}")
        require(self.attenuation > 0, "attenuation", f"must be positive, got {self.attenuation}")
        require(1 <= self.oversample <= 4, "oversample", f"must be 1, 2, 3 or 4, got {self.oversample}")
        require(self.view_selection == "equispaced" or self.views <= 180, "views",
                f"random views are drawn from 180 angles; got {self.views}")

    def build_operator(self, key, shape):
        h, w, c = shape
        require(h == w and c == 1, "image", f"CT images are square and grayscale, (N, N, 1); got {shape}")
        return ParallelBeamCT(angles=view_angles(self.views, self.view_selection, key), in_shape=(h, w, 1))

    def simulate(self, key, x_true) -> Problem:
        k_op, k_noise = jax.random.split(key)
        x_true = jnp.asarray(x_true, jnp.float32)
        op = self.build_operator(k_op, tuple(x_true.shape))
        y = jnp.asarray(fine_grid_sinogram(np.asarray(x_true[..., 0]), np.asarray(op.angles), self.oversample),
                        jnp.float32)
        k_poisson, k_gauss = jax.random.split(k_noise)
        if self.photons > 0:
            y = post_log_poisson(k_poisson, y, self.photons, self.attenuation)
        if self.sigma > 0:
            y = gaussian_noise(k_gauss, y, self.sigma / 255.0)
        if not bool(jnp.all(jnp.isfinite(y))):
            raise ValueError("simulated sinogram is not finite")
        return Problem(operator=op, y=y, x_true=x_true)
