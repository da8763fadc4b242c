"""Multi-coil MRI (SENSE): ``y_c = M ⊙ F(S_c x) + n`` on a complex image, simulated from a grayscale image or read
from a fastMRI file (``kspace``; :meth:`MRIConfig.load_measured`).

Simulation (no k-space file given): the image's intensities become the magnitude of a complex image with a smooth
random phase (a low-order polynomial, drawn from the image's key); ``coils`` birdcage coil maps; k-space is computed
on a grid ``oversample`` times finer (the image resampled bicubically, the maps evaluated there) and its centre
``H × W`` block kept, so the data are not made by the operator that reconstructs them (the inverse crime); complex
Gaussian noise of std ``sigma``/255 relative to the image's peak magnitude 1, on the sampled entries only; a Cartesian
mask (:func:`~dipjax.operators.cartesian_mask`). The reconstruction's coil maps are estimated from the measured data
by ESPIRiT (``maps="espirit"``, calibration on the fully sampled centre) or are the simulating maps on the coarse
grid (``maps="birdcage"``). The ground truth is the complex image on the reconstruction grid; metrics compare
magnitudes.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from dipjax.fastmri import FastMRIError, FastMRISlice, evaluate_slice, read_fastmri
from dipjax.operators import MultiCoilMRI, birdcage_maps, cartesian_mask, espirit_maps, fft2c, from_complex, to_complex
from dipjax.operators.mri import MASK_KINDS, ifft2c, rss
from dipjax.problem import Problem
from dipjax.tasks.base import TaskConfig, option, register_task, require


#: The fewest fully sampled centre columns the task calibrates ESPIRiT on.
MIN_CALIBRATION = 8


def center_fraction_for(width: int, fraction: float = 0.08) -> float:
    """``fraction`` (fastMRI's 8 %) of centre columns, or the :data:`MIN_CALIBRATION` columns ESPIRiT needs when
    ``width`` is too narrow for that (12.5 % at 64)."""
    return max(fraction, MIN_CALIBRATION / width)


def smooth_phase(key, h: int, w: int, strength: float = np.pi) -> np.ndarray:
    """A smooth random phase map: ``strength ·`` a random combination of 1, x, y, xy, x², y² on [−1, 1]²."""
    c = np.asarray(jax.random.uniform(key, (6,), minval=-0.5, maxval=0.5))
    y, x = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    return strength * (c[0] + c[1] * x + c[2] * y + c[3] * x * y + c[4] * x**2 + c[5] * y**2)


@register_task
@dataclasses.dataclass(frozen=True)
class MRIConfig(TaskConfig):
    name: ClassVar[str] = "mri"
    summary: ClassVar[str] = ("y_c = M ⊙ F(S_c x) + n: multi-coil Cartesian MRI of a complex image (simulated from "
                              "an image, or a fastMRI file; magnitudes compared)")
    input_channels: ClassVar[int] = 1
    operator_channels: ClassVar[int] = 2
    complex_images: ClassVar[bool] = True

    sigma: float = option(5.0, "k-space noise std on the 0-255 scale of the image's peak magnitude")
    coils: int = option(8, "receive coils (birdcage sensitivities)")
    acceleration: float = option(4.0, "undersampling factor R (phase-encode columns kept: about W / R)")
    sampling: str = option("random", "Cartesian mask: fastMRI random or equispaced, aSeqDIP variable density",
                           choices=MASK_KINDS)
    center_fraction: float = option(0.08, "fraction of fully sampled centre columns (fastMRI: 0.08 at 4x)")
    maps: str = option("espirit", "coil maps of the reconstruction: ESPIRiT from the data, or the simulating ones",
                       choices=("espirit", "birdcage"))
    oversample: int = option(2, "simulate k-space on a grid this many times finer (1: on the reconstruction grid)")
    kspace: str = option("", "fastMRI HDF5 file (multi-coil or single-coil): reconstruct slice --slice of it, "
                         "undersampled by the mask, instead of simulating from --image")
    slice: int = option(-1, "slice of --kspace (-1: the middle one)")
    slices: int = option(1, "reconstruct this many neighbouring slices of --kspace (of each file, in dipjax dataset), "
                         "centred on --slice, together as one batch (0: every slice of the volume)")

    file_option: ClassVar[str | None] = "kspace"
    file_suffixes: ClassVar[tuple[str, ...]] = (".h5", ".hdf5")

    def check(self):
        require(1 <= self.coils <= 64, "coils", f"must be between 1 and 64, got {self.coils}")
        require(self.acceleration >= 1, "acceleration", f"must be at least 1, got {self.acceleration}")
        require(0 < self.center_fraction <= 1, "center_fraction", f"must be in (0, 1], got {self.center_fraction}")
        require(1 <= self.oversample <= 4, "oversample", f"must be 1, 2, 3 or 4, got {self.oversample}")
        require(self.slice >= -1, "slice", f"must be a slice index or -1, got {self.slice}")
        require(self.slices >= 0, "slices", f"must be a number of slices or 0 (all), got {self.slices}")
        require(self.kspace == "" or self.kspace.endswith(self.file_suffixes), "kspace",
                f"must be a fastMRI HDF5 file (.h5), got {self.kspace!r}")

    def sampling_mask(self, key, h: int, w: int) -> np.ndarray:
        seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
        return cartesian_mask(self.sampling, (h, w), self.acceleration, self.center_fraction, seed)

    def build_operator(self, key, shape):
        h, w, c = shape
        require(c == 2, "image", f"MRI images are complex, (H, W, 2); got {shape}")
        return MultiCoilMRI(maps=jnp.asarray(birdcage_maps((self.coils, h, w))),
                            mask=jnp.asarray(self.sampling_mask(key, h, w)), in_shape=(h, w, 2))

    def complex_truth(self, key, image) -> np.ndarray:
        """The simulated complex image: the grayscale image as magnitude times a smooth random phase."""
        image = np.asarray(image, np.float64)
        require(image.ndim == 3 and image.shape[-1] == 1, "image",
                f"the mri task simulates from a grayscale image (H, W, 1); got {image.shape} (drop --rgb)")
        h, w = image.shape[:2]
        return image[..., 0] * np.exp(1j * smooth_phase(key, h, w))

    def simulate(self, key, x_true) -> Problem:
        from skimage.transform import resize

        require(self.slices == 1, "slices", "applies to fastMRI files only (--kspace FILE, or dipjax dataset over .h5 "
                "files)")

        k_phase, k_mask, k_noise = jax.random.split(key, 3)
        img = np.asarray(x_true, np.float64)
        z = self.complex_truth(k_phase, img)
        h, w = z.shape
        f = self.oversample
        fine = resize(img[..., 0], (f * h, f * w), order=3, mode="reflect", anti_aliasing=False)
        z_fine = fine * np.exp(1j * smooth_phase(k_phase, f * h, f * w))
        k_fine = np.asarray(fft2c(birdcage_maps((self.coils, f * h, f * w)) * z_fine[None]))
        top, left = f * h // 2 - h // 2, f * w // 2 - w // 2  # keep the centre, DC at index n // 2 in both grids
        kspace = k_fine[:, top:top + h, left:left + w] / f  # unitary FFTs: the coarse grid has f² fewer samples
        mask = self.sampling_mask(k_mask, h, w)
        sigma = self.sigma / 255.0
        if sigma > 0:
            kr, ki = jax.random.split(k_noise)
            noise = (np.asarray(jax.random.normal(kr, kspace.shape)) + 1j * np.asarray(jax.random.normal(ki,
                     kspace.shape))) * sigma / np.sqrt(2)
            kspace = kspace + noise
        return self._problem(kspace, mask, jnp.asarray(from_complex(z), jnp.float32))

    def _coil_maps(self, y, h: int, w: int) -> np.ndarray:
        """The reconstruction's coil maps for measured ``y`` ``(coils, h, w)``: ``S = 1`` for a single-coil file
        (its k-space is already of one combined image, fastMRI's emulated single coil), otherwise as ``--maps``."""
        if self.reads_file() and y.shape[0] == 1:
            return np.ones((1, h, w), np.complex64)
        if self.maps == "birdcage":
            return birdcage_maps((self.coils, h, w))
        centre = int(round(w * self.center_fraction))
        calib = min(24, centre, h)
        require(calib >= MIN_CALIBRATION, "center_fraction", f"leaves {centre} fully sampled columns; ESPIRiT "
                f"needs at least {MIN_CALIBRATION} (raise --center-fraction or use --maps birdcage)")
        return espirit_maps(y, calib_width=calib, kernel_width=min(6, calib // 2))

    def _problem(self, kspace, mask, x_true) -> Problem:
        """The problem of (noisy, fully sampled) ``kspace`` undersampled by ``mask``, maps as ``--maps`` says."""
        h, w = mask.shape
        y = (np.asarray(kspace) * mask).astype(np.complex64)
        if not np.all(np.isfinite(y)):
            raise ValueError("k-space is not finite")
        op = MultiCoilMRI(maps=jnp.asarray(self._coil_maps(y, h, w)), mask=jnp.asarray(mask), in_shape=(h, w, 2))
        return Problem(operator=op, y=jnp.asarray(y), x_true=x_true)

    # -- measured data: a fastMRI file, multi-coil or single-coil (--kspace FILE --slice N) ----------------------

    def reads_file(self) -> bool:
        return bool(self.kspace)

    def _slice(self) -> FastMRISlice:
        return read_fastmri(self.kspace, self.slice)

    def measured_parts(self) -> list["MRIConfig"]:
        """One task per slice of ``--slices``: the ``--slices`` neighbours of ``--slice`` (the middle one by
        default), shifted to fit inside the volume, or every slice with ``--slices 0``. A volume's slices share the
        grid, the coils and the mask (one key), so they run as one batch. The file is read here, one slice at
        ``--slices 1`` too."""
        if not self.reads_file():
            return [self]
        sl = self._slice()
        if self.slices == 1:
            return [self]
        count = sl.slices if self.slices == 0 else self.slices
        if count > sl.slices:
            raise FastMRIError(f"--slices {count}: {self.kspace!r} has {sl.slices} slices")
        first = min(max(sl.index - (count - 1) // 2, 0), sl.slices - count)
        return [dataclasses.replace(self, slice=i, slices=1) for i in range(first, first + count)]

    def part_name(self) -> str:
        return f"slice{self.slice}"

    @staticmethod
    def _scale(kspace, mask) -> float:
        """The measured data's scale: the peak of the zero-filled RSS image ``max √Σ_c |F⁻¹(M ⊙ k_c)|²``. Only the
        sampled k-space enters (the SG-DIP/aSeqDIP lab's code scales by the fully sampled k-space, a ground-truth leak;
        see :mod:`dipjax.methods.self_guided`)."""
        return float(np.max(np.asarray(rss(ifft2c(np.asarray(kspace) * mask)))))

    def load_measured(self, key) -> tuple[Problem, str]:
        """Slice ``--slice`` of ``--kspace`` undersampled retrospectively by the task's mask, divided by
        :meth:`_scale` so that the zero-filled image peaks at 1; coil maps by ESPIRiT from the undersampled data
        (``--coils``, ``--sigma`` and ``--oversample`` do not apply: the file fixes the coils and its noise), or
        ``S = 1`` for a single-coil file, whose k-space is already of one combined image (fastMRI's emulated single
        coil). The truth is the fully sampled k-space combined with the same maps, ``Σ_c conj(S_c) F⁻¹ k_c``
        (complex)."""
        require(self.maps == "espirit", "maps", "must be espirit for measured k-space (the file has no coil maps)")
        sl = self._slice()
        _, h, w = sl.kspace.shape
        mask = self.sampling_mask(key, h, w)
        kspace = sl.kspace / self._scale(sl.kspace, mask)
        problem = self._problem(kspace, mask, None)
        maps = np.asarray(problem.operator.maps)
        truth = np.sum(np.conj(maps) * np.asarray(ifft2c(kspace)), axis=0)
        return problem.replace(x_true=jnp.asarray(from_complex(truth), jnp.float32)), sl.label

    def task_metrics(self, problem, x) -> dict[str, float]:
        """fastMRI's scores of ``x`` (magnitude, centre-cropped to the reconstruction size) against the file's
        reference, ``reconstruction_rss`` or a single-coil file's ``reconstruction_esc``
        (:func:`~dipjax.fastmri.evaluate_slice`), on the file's scale; empty without a file or without a
        reference (test-set files)."""
        if not self.reads_file():
            return {}
        sl = self._slice()
        if sl.reference is None:
            return {}
        scale = self._scale(sl.kspace, np.asarray(problem.operator.mask))
        magnitude = np.abs(np.asarray(to_complex(jnp.asarray(x)))) * scale
        scores = evaluate_slice(magnitude, sl.reference, sl.max_value)
        return {f"{k}_fastmri": v for k, v in scores.items()}
