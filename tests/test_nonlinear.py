"""The nonlinear forward models (phase retrieval, blur through a camera response), their baselines and the inpainting
hole ratio. (Every registered method on both nonlinear tasks: tests/test_cli.py; the operators against independent
implementations and finite differences: tests/test_operators.py.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dipjax import operators as ops
from dipjax.baselines import hio_er
from dipjax.data import load_image
from dipjax.metrics import psnr, psnr_up_to_ambiguity
from dipjax.tasks import OptionError, degradation_key, task_config


def test_hio_er_recovers_a_noiseless_image_up_to_the_ambiguities():
    """Fienup's HIO + ER with the support and non-negativity constraints solves noiseless 2×-oversampled phase
    retrieval of a 32² image (it is unique up to the trivial ambiguities); the spectral initialiser is only a start."""
    x = jnp.asarray(load_image("camera", 32, 1))
    problem = task_config("pr", sigma=0.0).simulate(degradation_key(0, "camera"), x)
    op = problem.operator
    assert op.pad == 16 and problem.y.shape == (64, 64, 1)
    estimate, residuals, starts = hio_er(op, problem.y, jax.random.key(0), starts=4)
    assert residuals.shape == (4, 1) and starts.shape == (4, 32, 32, 1)
    assert float(psnr_up_to_ambiguity(estimate, x, op.pad)) > 40
    spectral = op.init_image(problem.y)
    assert 5 < float(psnr_up_to_ambiguity(spectral, x, op.pad)) < 25
    assert float(jnp.linalg.norm(spectral)) == pytest.approx(float(jnp.linalg.norm(x)), rel=1e-3)  # Parseval


def test_phase_retrieval_options_and_noise():
    x = jnp.asarray(load_image("coins", 32, 1))
    op = task_config("pr", oversampling=1.5).build_operator(None, x.shape)
    assert op.pad == 8 and op.out_shape == (48, 48, 1)  # DPS's 256² → 384², at 32²
    intensity = task_config("pr", measure="intensity", sigma=0.0).simulate(degradation_key(0, "c"), x)
    amplitude = task_config("pr", sigma=0.0).simulate(degradation_key(0, "c"), x)
    np.testing.assert_allclose(intensity.y, amplitude.y**2, rtol=1e-5, atol=1e-6)
    # Poisson counts: intensities are multiples of 1/α, the brightest near its count; unbiased on average
    config = task_config("pr", measure="intensity", sigma=0.0, peak_photons=1e5)
    noisy = config.simulate(degradation_key(0, "c"), x).y
    alpha = 1e5 / float(jnp.max(intensity.y))
    counts = np.asarray(noisy) * alpha
    np.testing.assert_allclose(counts, np.round(counts), atol=2e-3 * counts.max())
    assert abs(float(jnp.sum(noisy)) / float(jnp.sum(intensity.y)) - 1) < 0.01
    assert config.task_metrics(amplitude, x) == {"psnr_aligned": np.inf}
    for bad in ({"oversampling": 0.5}, {"peak_photons": -1.0}, {"measure": "phase"}):
        with pytest.raises(OptionError):
            task_config("pr", **bad)


def test_saturating_camera_response():
    u = jnp.linspace(0, 1, 101)
    for a in (0.5, 2.0, 6.0):
        g = ops.saturating_response(u, a)
        assert float(g[0]) == 0 and float(g[-1]) == pytest.approx(1.0, abs=1e-6)
        assert bool(jnp.all(jnp.diff(g) > 0)) and bool(jnp.all(jnp.diff(g, 2) < 0))  # increasing, concave
        slope0 = float(jax.grad(lambda v: ops.saturating_response(v, a))(0.0))
        assert slope0 == pytest.approx(a / (1 - np.exp(-a)), rel=1e-5)
        np.testing.assert_allclose(ops.inverse_response(g, a), u, atol=3e-5)
    np.testing.assert_allclose(ops.saturating_response(u, 1e-4), u, atol=1e-4)  # a → 0: the identity
    x = jnp.asarray(load_image("astronaut", 32, 3))
    problem = task_config("nonlinear_deblur", sigma=0.0).simulate(degradation_key(0, "a"), x)
    linear = task_config("deblur", sigma=0.0).simulate(degradation_key(0, "a"), x)
    np.testing.assert_allclose(problem.operator.init_image(problem.y), linear.y, atol=1e-4)  # g⁻¹ undoes g
    assert float(psnr(problem.y, x)) < float(psnr(linear.y, x)) - 3  # the response is a strong nonlinearity


def test_inpainting_hole_ratio():
    x = jnp.ones((64, 48, 1))
    op = task_config("inpaint", mask="box", hole_ratio=0.25).build_operator(None, x.shape)
    hole = 1 - np.asarray(op.mask)[..., 0]
    assert hole.sum() == 28 * 28 and abs(hole.mean() - 0.25) < 0.01
    rows, cols = np.nonzero(hole)
    assert (rows.min() + rows.max()) / 2 == pytest.approx(31.5, abs=1) and (cols.min() + cols.max()) / 2 == \
        pytest.approx(23.5, abs=1)
    default = task_config("inpaint", mask="box").build_operator(None, (512, 512, 1))
    assert (1 - np.asarray(default.mask)).sum() == 190 * 190  # aSeqDIP's box
    with pytest.raises(OptionError, match="hole_ratio"):
        task_config("inpaint", hole_ratio=1.0)
