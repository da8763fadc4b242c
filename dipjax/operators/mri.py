"""Multi-coil MRI: the SENSE forward model, Cartesian undersampling masks, coil sensitivity maps.

``A x = M ⊙ F(S_c x)`` for every coil c, ``Aᴴ y = Σ_c conj(S_c) F⁻¹(M ⊙ y_c)``, with the centred unitary FFT
``F = fftshift ∘ fftn(norm="ortho") ∘ ifftshift`` over the two image axes — the convention of fastMRI
(``fastmri/fftc.py``), deepinv (``physics/mri.py``), sigpy and BART (``bart fft -u``). Images follow dipjax's complex
convention (:mod:`dipjax.operators.base`): ``(H, W, 2)`` real/imaginary channels; k-space and coil maps are complex
``(coils, H, W)``; the mask is a real ``(H, W)`` array (Cartesian masks select phase-encode columns, the last axis).
With maps whose root-sum-of-squares is 1 and a full mask, ``AᴴA = I``.

Masks (:func:`cartesian_mask`): fastMRI's ``RandomMaskFunc`` and ``EquispacedMaskFractionFunc``
(``fastmri/data/subsample.py``: ``round(W · center_fraction)`` centre columns starting at ``(W − n + 1) // 2``) and
aSeqDIP's variable-density random mask (``make_vdrs_mask``). Coil maps: :func:`birdcage_maps` (sigpy's analytic
birdcage model, for simulation) and :func:`espirit_maps` (ESPIRiT calibration as sigpy's ``EspiritCalib``, in
numpy; BART's ``ecalib`` when the Debian package ``bart`` is installed and asked for).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dipjax.operators.base import LinearOperator, check_image_shape, from_complex, to_complex

AXES = (-2, -1)


def fft2c(x, axes=AXES):
    """Centred unitary 2-D FFT over ``axes``: ``fftshift(fftn(ifftshift(x), norm="ortho"))``."""
    return jnp.fft.fftshift(jnp.fft.fftn(jnp.fft.ifftshift(x, axes=axes), axes=axes, norm="ortho"), axes=axes)


def ifft2c(k, axes=AXES):
    """Inverse of :func:`fft2c`."""
    return jnp.fft.fftshift(jnp.fft.ifftn(jnp.fft.ifftshift(k, axes=axes), axes=axes, norm="ortho"), axes=axes)


@struct.dataclass
class MultiCoilMRI(LinearOperator):
    """SENSE model ``y_c = M ⊙ F(S_c x)`` on ``(H, W, 2)`` images; ``maps`` complex ``(C, H, W)``, ``mask`` real
    ``(H, W)``. Both are pytree leaves (a batch may carry one mask and one set of maps per image)."""

    maps: jax.Array
    mask: jax.Array
    in_shape: tuple[int, ...] = struct.field(pytree_node=False)
    complex_image = True

    def __post_init__(self):
        h, w, two = check_image_shape(self.in_shape)
        if two != 2:
            raise ValueError(f"MRI images are (H, W, 2) real/imaginary channels, got in_shape {self.in_shape}")
        maps, mask = getattr(self.maps, "shape", None), getattr(self.mask, "shape", None)
        if maps is not None and (len(maps) < 3 or tuple(maps[-2:]) != (h, w)):
            raise ValueError(f"coil maps must be (coils, {h}, {w}), got {maps}")
        if mask is not None and (len(mask) < 2 or tuple(mask[-2:]) != (h, w)):
            raise ValueError(f"the sampling mask must be ({h}, {w}), got {mask}")

    @classmethod
    def single_coil(cls, mask) -> "MultiCoilMRI":
        """Single-coil MRI (``S = 1``): ``y = M ⊙ F x``."""
        mask = jnp.asarray(mask, jnp.float32)
        return cls(maps=jnp.ones((1,) + mask.shape, jnp.complex64), mask=mask, in_shape=mask.shape + (2,))

    @property
    def coils(self) -> int:
        return self.maps.shape[-3]

    def __call__(self, x):
        z = to_complex(x)
        return fft2c(self.maps * z[None]) * self.mask

    def adjoint(self, y):
        return from_complex(jnp.sum(jnp.conj(self.maps) * ifft2c(self.mask * y), axis=0))

    def view(self, x):
        """The magnitude inside the coil maps' support (``Σ_c |S_c|² > 0``): outside it the data say nothing about
        the image (ESPIRiT zeroes its maps there), so a reconstruction is reported as zero, as SENSE's would be."""
        support = jnp.sum(jnp.abs(self.maps) ** 2, axis=0) > 0
        return (jnp.abs(to_complex(x)) * support)[..., None]

    def data_consistent(self, x, y):
        """``Sᴴ F⁻¹[(1 − M) ⊙ F(S x) + M ⊙ y]``: the image whose sampled k-space is replaced by the measurements
        (aSeqDIP's MRI input update, ``Aseq_DIP_MRI.py:141-151``)."""
        k = fft2c(self.maps * to_complex(x)[None])
        k = (1 - self.mask) * k + self.mask * y
        return from_complex(jnp.sum(jnp.conj(self.maps) * ifft2c(k), axis=0))

    def coil_images(self, y):
        """Zero-filled coil images ``F⁻¹(M ⊙ y_c)``."""
        return ifft2c(self.mask * y)


def rss(coil_images, axis: int = 0):
    """Root-sum-of-squares coil combination ``sqrt(Σ_c |x_c|²)``."""
    return jnp.sqrt(jnp.sum(jnp.abs(coil_images) ** 2, axis=axis))


MASK_KINDS = ("random", "equispaced", "vdrs")


def cartesian_mask(kind: str, shape: tuple[int, int], acceleration: float = 4, center_fraction: float = 0.08,
                   seed: int = 0) -> np.ndarray:
    """A Cartesian undersampling mask of ``shape = (H, W)`` over the W phase-encode columns (float32 0/1).

    * ``"random"``: fastMRI's ``RandomMaskFunc`` — ``n = round(W · center_fraction)`` centre columns from
      ``(W − n + 1) // 2``, every other column kept with probability ``(W / R − n) / (W − n)``;
    * ``"equispaced"``: fastMRI's ``EquispacedMaskFractionFunc`` — the centre, and columns
      ``round(offset + k · a)`` for ``a = R (n − W) / (n R − W)``, so that the total is close to ``W / R`` (93 at
      W = 368, 80 at W = 320 for R = 4); ``offset`` is drawn from ``[0, round(a))``;
    * ``"vdrs"``: aSeqDIP's variable-density random sampling (``make_vdrs_mask``) — the centre block
      ``[(W − n) // 2, (W + n) // 2)`` and ``(round(W / R) − n) // 2`` distinct random columns on each side.

    ``seed`` makes it reproducible (numpy's ``RandomState`` for the fastMRI kinds, ``default_rng`` for vdrs, as
    upstream).
    """
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; expected one of {', '.join(MASK_KINDS)}")
    h, w = (int(s) for s in shape)
    if not acceleration >= 1 or not 0 < center_fraction <= 1:
        raise ValueError(f"need acceleration >= 1 and 0 < center_fraction <= 1, got {acceleration}, "
                         f"{center_fraction}")
    n_low = int(round(w * center_fraction))
    cols = np.zeros(w, bool)
    if kind == "vdrs":
        rng = np.random.default_rng(seed)
        low1, low2 = (w - n_low) // 2, (w + n_low) // 2
        cols[low1:low2] = True
        n_out = (int(round(w / acceleration)) - n_low) // 2
        if n_out > 0:
            if n_out > low1 - 1 or n_out > w - low2 - 1:
                raise ValueError(f"a vdrs mask of {w} columns cannot hold {n_out} random lines per side")
            cols[rng.choice(low1 - 1, size=n_out, replace=False)] = True
            cols[rng.choice(np.arange(low2 + 1, w), size=n_out, replace=False)] = True
        return np.broadcast_to(cols.astype(np.float32), (h, w)).copy()
    rng = np.random.RandomState(seed)
    pad = (w - n_low + 1) // 2
    if kind == "random":
        prob = (w / acceleration - n_low) / (w - n_low)
        cols = rng.uniform(size=w) < prob
    else:
        adjusted = acceleration * (n_low - w) / (n_low * acceleration - w)
        offset = rng.randint(0, round(adjusted))
        cols[np.around(np.arange(offset, w - 1, adjusted)).astype(np.uint)] = True
    cols[pad:pad + n_low] = True
    return np.broadcast_to(cols.astype(np.float32), (h, w)).copy()


def birdcage_maps(shape: tuple[int, int, int], r: float = 1.5) -> np.ndarray:
    """Analytic birdcage coil sensitivities ``(C, H, W)`` (sigpy ``mri.birdcage_maps``): coil c sits at radius ``r``
    (in units of the half field of view) and angle ``2πc/C``; its map is ``exp(i(atan2 − 2πc/C)) / distance``,
    normalised so that the root-sum-of-squares over coils is 1 everywhere."""
    c, h, w = (int(s) for s in shape)
    angles = 2 * np.pi * np.arange(c) / c
    y, x = np.mgrid[:h, :w]
    xc = (x - w / 2) / (w / 2) - (r * np.cos(angles))[:, None, None]
    yc = (y - h / 2) / (h / 2) - (r * np.sin(angles))[:, None, None]
    maps = np.exp(1j * (np.arctan2(xc, -yc) - angles[:, None, None])) / np.sqrt(xc**2 + yc**2)
    return (maps / np.sqrt(np.sum(np.abs(maps) ** 2, axis=0))).astype(np.complex64)


def _centre_crop(a, size, axes):
    slices = [slice(None)] * a.ndim
    for ax in axes:
        n = a.shape[ax]
        start = max(n // 2 - size // 2, 0)
        slices[ax] = slice(start, start + size)
    return a[tuple(slices)]


def _centre_pad(a, shape):
    """Zero-pad ``a`` to ``shape``, centred as sigpy's ``resize`` (input centre at output index ``n // 2``)."""
    out = np.zeros(shape, a.dtype)
    slices_out, slices_in = [], []
    for n_in, n_out in zip(a.shape, shape):
        start = n_out // 2 - n_in // 2
        slices_out.append(slice(start, start + n_in))
        slices_in.append(slice(None))
    out[tuple(slices_out)] = a
    return out


def espirit_maps(kspace, calib_width: int = 24, kernel_width: int = 6, threshold: float = 0.02, crop: float = 0.95,
                 max_iter: int = 100, backend: str = "numpy") -> np.ndarray:
    """ESPIRiT coil sensitivities (Uecker et al., MRM 2014) from multi-coil k-space ``(C, H, W)`` — one set of maps
    ``(C, H, W)``, as sigpy's ``EspiritCalib``: the centre ``calib_width²`` region → its block-Hankel calibration
    matrix of ``kernel_width²`` patches → the right singular vectors above ``threshold ×`` the largest singular value
    → per pixel, the leading eigenvector (power method, ``max_iter`` steps) of the image-domain kernel Gram matrix →
    phase referenced to coil 0, zero where the eigenvalue is below ``crop``. Only the calibration region is read, so
    undersampled k-space with a fully sampled centre works.

    ``backend="bart"`` runs ``bart ecalib -m1 -r calib_width -k kernel_width -t threshold -c crop`` (the tool the
    survey used) when the ``bart`` command is installed; it is never required.
    """
    ksp = np.asarray(kspace)
    if ksp.ndim != 3:
        raise ValueError(f"k-space must be (coils, H, W), got shape {ksp.shape}")
    if backend == "bart":
        return _bart_ecalib(ksp, calib_width, kernel_width, threshold, crop)
    if backend != "numpy":
        raise ValueError(f"unknown ESPIRiT backend {backend!r}; expected 'numpy' or 'bart'")
    c, h, w = ksp.shape
    if calib_width > min(h, w) or kernel_width > calib_width:
        raise ValueError(f"need kernel_width <= calib_width <= image side, got {kernel_width}, {calib_width}, "
                         f"{h}x{w}")
    calib = _centre_crop(ksp.astype(np.complex128), calib_width, (1, 2))
    n = calib_width - kernel_width + 1
    blocks = np.stack([calib[:, i:i + kernel_width, j:j + kernel_width].reshape(-1)
                       for i in range(n) for j in range(n)])  # (patches, C·k·k), C-major like sigpy
    _, s, vh = np.linalg.svd(blocks, full_matrices=False)
    kernels = vh[s > threshold * s.max()].reshape(-1, c, kernel_width, kernel_width)
    # Image-domain kernels and their Gram matrix per pixel: G[p] = Σ_k a_k(p) a_k(p)ᴴ, a_k(p) ∈ C^C.
    img_kernels = np.stack([np.asarray(ifft2c(_centre_pad(k, (c, h, w)))) for k in kernels])  # (K, C, H, W)
    gram = np.einsum("kcp,kdp->pcd", img_kernels.reshape(len(kernels), c, -1),
                     np.conj(img_kernels.reshape(len(kernels), c, -1)))
    gram *= (h * w) / kernel_width**2
    v = np.ones((h * w, c, 1), np.complex128)
    eig = np.ones((h * w, 1, 1))
    for _ in range(max_iter):
        v = gram @ v
        eig = np.sqrt(np.sum(np.abs(v) ** 2, axis=1, keepdims=True))
        v = v / np.maximum(eig, 1e-30)
    maps = v[..., 0].T.reshape(c, h, w)
    ref = maps[0] / np.maximum(np.abs(maps[0]), 1e-30)
    maps = maps * np.conj(ref)
    maps *= (eig[:, 0, 0].reshape(h, w) > crop)
    return maps.astype(np.complex64)


def _write_cfl(path, array):
    """BART's ``.cfl``/``.hdr`` pair: complex64 data in column-major order, the dimensions in the header."""
    a = np.asarray(array, np.complex64)
    with open(path + ".hdr", "w") as f:
        f.write("# Dimensions\n" + " ".join(str(d) for d in a.shape) + "\n")
    a.flatten(order="F").tofile(path + ".cfl")


def _read_cfl(path):
    with open(path + ".hdr") as f:
        f.readline()
        dims = [int(d) for d in f.readline().split()]
    return np.fromfile(path + ".cfl", np.complex64).reshape(dims, order="F")


def _bart_ecalib(ksp, calib_width, kernel_width, threshold, crop):
    """``bart ecalib`` on ``(C, H, W)`` k-space (BART's dims: x, y, z, coils)."""
    if shutil.which("bart") is None:
        raise ValueError("backend='bart' needs the 'bart' command (Debian package bart); it is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        kin, kout = os.path.join(tmp, "ksp"), os.path.join(tmp, "maps")
        _write_cfl(kin, np.transpose(ksp, (1, 2, 0))[:, :, None, :])  # (H, W, 1, C)
        subprocess.run(["bart", "ecalib", "-m1", "-r", str(calib_width), "-k", str(kernel_width), "-t",
                        str(threshold), "-c", str(crop), kin, kout], check=True, capture_output=True)
        maps = _read_cfl(kout)
    return np.transpose(maps.reshape(maps.shape[0], maps.shape[1], -1), (2, 0, 1)).astype(np.complex64)
