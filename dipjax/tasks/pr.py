"""Fourier phase retrieval: ``y = |F pad(x)|`` or ``|F pad(x)|²`` with Gaussian and/or Poisson noise (DPS's task)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from dipjax.metrics import psnr_up_to_ambiguity
from dipjax.operators import GaussianNoise, PhaseRetrieval
from dipjax.operators.phase_retrieval import MEASURES
from dipjax.tasks.base import TaskConfig, option, register_task, require


@dataclasses.dataclass(frozen=True)
class PhaseNoise:
    """Poisson photon counts on the intensities, ``I' = Poisson(α I) / α`` with ``α`` such that the brightest
    measurement expects ``photons`` counts (none if 0), then Gaussian noise ``σ`` on the measurements, clipped at 0."""

    measure: str
    photons: float
    sigma: float

    def __call__(self, key, y):
        k_poisson, k_gauss = jax.random.split(key)
        if self.photons > 0:
            intensity = y**2 if self.measure == "amplitude" else y
            alpha = self.photons / jnp.max(intensity)
            intensity = jax.random.poisson(k_poisson, alpha * intensity).astype(y.dtype) / alpha
            y = jnp.sqrt(intensity) if self.measure == "amplitude" else intensity
        if self.sigma > 0:
            y = GaussianNoise(self.sigma, (0.0, None))(k_gauss, y)
        return y


@register_task
@dataclasses.dataclass(frozen=True)
class PhaseRetrievalConfig(TaskConfig):
    name: ClassVar[str] = "pr"
    summary: ClassVar[str] = ("y = abs(F pad(x)) or its square: Fourier phase retrieval, oversampled by zero padding, "
                              "Gaussian and/or Poisson noise; scored up to its trivial ambiguities")

    sigma: float = option(12.75, "Gaussian noise std of the measurements on the 0-255 scale (DPS: 0.05 = 12.75/255)")
    oversampling: float = option(2.0, "padded side / image side (DPS pads 256² to 384²: 1.5)")
    measure: str = option("amplitude", "measure Fourier amplitudes or intensities", choices=MEASURES)
    peak_photons: float = option(0.0, "Poisson noise: expected photon count of the brightest measurement (0: none)")

    def check(self):
        require(1 <= self.oversampling <= 8, "oversampling", f"must be in [1, 8], got {self.oversampling}")
        require(self.peak_photons >= 0, "peak_photons", f"must be non-negative, got {self.peak_photons}")

    def build_operator(self, key, shape):
        return PhaseRetrieval.oversampled(shape, self.oversampling, self.measure)

    def noise_model(self):
        if self.sigma == 0 and self.peak_photons == 0:
            return None
        return PhaseNoise(self.measure, self.peak_photons, self.sigma / 255.0)

    def task_metrics(self, problem, x) -> dict[str, float]:
        """The PSNR modulo sign, translation and conjugate flip (:func:`~dipjax.metrics.psnr_up_to_ambiguity`)."""
        if problem.x_true is None:
            return {}
        return {"psnr_aligned": float(psnr_up_to_ambiguity(x, problem.x_true, problem.operator.pad))}
