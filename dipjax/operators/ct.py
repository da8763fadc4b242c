"""Sparse-view parallel-beam CT: a differentiable Radon transform in scikit-image's geometry, its exact adjoint, and
filtered back-projection with scikit-image's ``iradon`` conventions.

:class:`ParallelBeamCT` rotates the image about the pixel ``(N // 2, N // 2)`` by each angle θ (degrees) with bilinear
interpolation (zero outside) and sums over rows, exactly as ``skimage.transform.radon``
(``skimage/transform/radon_transform.py``): with ``circle=False`` the image is first zero-padded to
``ceil(√2 · N)`` pixels, so the sinogram is ``(detectors, angles)`` with ``detectors = ceil(√2 · N)``; with
``circle=True`` the image must vanish outside the inscribed circle and ``detectors = N``. The adjoint is the exact
transpose (``jax.linear_transpose``: the bilinear gather becomes a scatter-add) — *not* unfiltered back-projection,
which differs from it by 7 % after the best scaling (METHODS.md §10). The interpolation is written out
(:func:`bilinear_zero`) rather than ``jax.scipy.ndimage.map_coordinates``: in jax 0.10.2 the transpose of
``map_coordinates`` mapped over traced angles (``vmap`` or ``lax.map``) is wrong *under jit* by 10–20 % (eager is
right); ``tests/test_operators.py`` checks the jitted adjoint and vector–Jacobian product of every task's operator.

:func:`fbp` is ``skimage.transform.iradon``: the Kak–Slaney ramp filter (optionally Shepp–Logan, cosine, Hamming,
Hann), zero-padding to ``max(64, 2^ceil(log2(2 · detectors)))``, linear-interpolation back-projection, times
``π / (2 · angles)``. Angles: :func:`view_angles` (equispaced over 180° or drawn from 180 equispaced angles).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dipjax.operators.base import LinearOperator, check_image_shape

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def bilinear_zero(img, rows, cols):
    """``img`` (2-D) at the real coordinates ``(rows, cols)`` by bilinear interpolation, zero outside the image (each
    of the four neighbours outside contributes nothing): ``map_coordinates(img, [rows, cols], order=1,
    mode="constant")`` as one gather per neighbour, whose transpose is a plain scatter-add."""
    h, w = img.shape
    r0, c0 = jnp.floor(rows), jnp.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
    flat = img.reshape(-1)
    out = jnp.zeros(rows.shape, img.dtype)
    for dr, dc, weight in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):
        r, c = r0 + dr, c0 + dc
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        out = out + jnp.where(inside, weight * flat[jnp.where(inside, r * w + c, 0)], 0.0)
    return out


def padded_size(n: int, circle: bool) -> int:
    """Detector count (and the side of the rotated grid) for an ``n × n`` image."""
    return n if circle else int(math.ceil(math.sqrt(2) * n))


@struct.dataclass
class ParallelBeamCT(LinearOperator):
    """``y = R_θ x``: the Radon transform of a square ``(N, N, 1)`` image at the angles ``angles`` (degrees; a pytree
    leaf, so a batch may carry its own views); output ``(detectors, len(angles))``."""

    angles: jax.Array
    in_shape: tuple[int, ...] = struct.field(pytree_node=False)
    circle: bool = struct.field(pytree_node=False, default=False)

    def __post_init__(self):
        h, w, c = check_image_shape(self.in_shape)
        if h != w or c != 1:
            raise ValueError(f"parallel-beam CT takes square one-channel images (N, N, 1), got {self.in_shape}")

    @property
    def detectors(self) -> int:
        return padded_size(self.in_shape[0], self.circle)

    def _padded(self, img):
        n = self.in_shape[0]
        if self.circle:
            return img
        pad = self.detectors - n
        before = (n + pad) // 2 - n // 2
        return jnp.pad(img, ((before, pad - before), (before, pad - before)))

    def __call__(self, x):
        img = self._padded(x[..., 0])
        p = img.shape[0]
        center = p // 2
        rows, cols = jnp.mgrid[:p, :p].astype(img.dtype)

        def project(theta):
            a = jnp.deg2rad(theta.astype(img.dtype))
            cos, sin = jnp.cos(a), jnp.sin(a)
            src_x = cos * cols + sin * rows - center * (cos + sin - 1)
            src_y = -sin * cols + cos * rows - center * (cos - sin - 1)
            rotated = bilinear_zero(img, src_y, src_x)
            return rotated.sum(axis=0)

        # vmap over the angles (≈ 3 · views · P² floats of coordinates; 95 MB for 180 views at 256²). jax 0.10's
        # lax.map(batch_size=8) transposed wrongly for 18 angles (a remainder of 2), so it is not used.
        return jax.vmap(project)(self.angles).T

    def init_image(self, y):
        """Filtered back-projection (ramp), the field's standard starting point (aSeqDIP's CT input)."""
        return fbp(y, self.angles, output_size=self.in_shape[0], circle=self.circle)[..., None]


def fourier_filter(size: int, name: str = "ramp") -> np.ndarray:
    """scikit-image's ``_get_fourier_filter``: the Kak–Slaney ramp (space-domain taps f[0] = 1/4,
    f[odd] = −1/(πn)², eq. 61 of their chapter 3), optionally windowed; ``(size,)`` real."""
    if name not in FILTERS:
        raise ValueError(f"unknown FBP filter {name!r}; expected one of {', '.join(FILTERS)}")
    n = np.concatenate((np.arange(1, size / 2 + 1, 2, dtype=int), np.arange(size / 2 - 1, 0, -2, dtype=int)))
    f = np.zeros(size)
    f[0] = 0.25
    f[1::2] = -1 / (np.pi * n) ** 2
    filt = 2 * np.real(np.fft.fft(f))
    if name == "shepp-logan":
        omega = np.pi * np.fft.fftfreq(size)[1:]
        filt[1:] *= np.sin(omega) / omega
    elif name == "cosine":
        filt *= np.fft.fftshift(np.sin(np.linspace(0, np.pi, size, endpoint=False)))
    elif name == "hamming":
        filt *= np.fft.fftshift(np.hamming(size))
    elif name == "hann":
        filt *= np.fft.fftshift(np.hanning(size))
    return filt


def fbp(sinogram, angles, filter: str = "ramp", output_size: int | None = None, circle: bool = False):
    """Filtered back-projection of a ``(detectors, angles)`` sinogram, as ``skimage.transform.iradon`` with linear
    interpolation; returns ``(output_size, output_size)`` (default: ``floor(√(d²/2))`` for ``circle=False``, ``d``
    for ``circle=True``). Jit-able and differentiable."""
    sinogram = jnp.asarray(sinogram)
    d, n_angles = sinogram.shape
    if n_angles != len(angles):
        raise ValueError(f"the sinogram has {n_angles} projections but {len(angles)} angles were given")
    if output_size is None:
        output_size = d if circle else int(np.floor(np.sqrt(d**2 / 2.0)))
    if circle:  # skimage's _sinogram_circle_to_square: pad the detector axis to the diagonal
        diagonal = int(np.ceil(np.sqrt(2) * d))
        pad = diagonal - d
        before = (diagonal // 2) - (d // 2)
        sinogram = jnp.pad(sinogram, ((before, pad - before), (0, 0)))
        d = diagonal
    size = max(64, int(2 ** np.ceil(np.log2(2 * d))))
    padded = jnp.pad(sinogram, ((0, size - d), (0, 0)))
    filt = jnp.asarray(fourier_filter(size, filter), sinogram.dtype)[:, None]
    filtered = jnp.real(jnp.fft.ifft(jnp.fft.fft(padded, axis=0) * filt, axis=0))[:d]
    radius = output_size // 2
    xpr, ypr = (np.mgrid[:output_size, :output_size] - radius).astype(np.float64)
    det = jnp.arange(d, dtype=sinogram.dtype) - d // 2

    def back(col, theta):
        a = jnp.deg2rad(theta)
        t = jnp.asarray(ypr, sinogram.dtype) * jnp.cos(a) - jnp.asarray(xpr, sinogram.dtype) * jnp.sin(a)
        return jnp.interp(t, det, col, left=0.0, right=0.0)

    recon = jnp.sum(jax.vmap(back)(filtered.T, jnp.asarray(angles, sinogram.dtype)), axis=0)
    if circle:
        recon = jnp.where(jnp.asarray(xpr**2 + ypr**2 > radius**2), 0.0, recon)
    return recon * np.pi / (2 * n_angles)


def view_angles(views: int, kind: str = "equispaced", key=None, full: int = 180) -> jax.Array:
    """Projection angles in degrees: ``views`` equispaced over [0°, 180°) (``kind="equispaced"``), or ``views``
    distinct angles drawn with ``key`` from ``full`` equispaced ones (``kind="random"``), sorted."""
    if views < 1:
        raise ValueError(f"need at least one view, got {views}")
    dtype = jax.dtypes.canonicalize_dtype(jnp.float64)  # float64 where x64 is on, else float32
    if kind == "equispaced":
        return jnp.asarray(np.linspace(0, 180, views, endpoint=False), dtype)
    if kind == "random":
        if views > full or key is None:
            raise ValueError(f"random views need a key and at most {full} views, got {views}")
        grid = np.linspace(0, 180, full, endpoint=False)
        pick = np.sort(np.asarray(jax.random.choice(key, full, (views,), replace=False)))
        return jnp.asarray(grid[pick], dtype)
    raise ValueError(f"unknown view selection {kind!r}; expected 'equispaced' or 'random'")


def post_log_poisson(key, line_integrals, photons: float, mu: float):
    """Post-log photon-count noise: ``N ~ Poisson(I₀ e^{−μ y})``, returned as ``−log(max(N, 1) / I₀) / μ`` (zero counts
    are set to one photon, the usual convention). ``mu`` converts the image's units to attenuation per pixel length
    (deepinv's ``LogPoissonNoise`` uses N₀ = 1024, μ = 1/50)."""
    if photons <= 0 or mu <= 0:
        raise ValueError(f"need photons > 0 and mu > 0, got {photons}, {mu}")
    counts = jax.random.poisson(key, photons * jnp.exp(-mu * line_integrals))
    return (-jnp.log(jnp.maximum(counts, 1).astype(line_integrals.dtype) / photons) / mu).astype(line_integrals.dtype)
