"""Theorem 1's terms, the Heckel–Soltanolkotabi factors and the decoder-Jacobian facts; the WMV of ES-DIP; the Figure 4 script at a tiny size."""

import json

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.fft import dct
from scipy.ndimage import convolve1d

from dipjax.stopping import windowed_moving_variance
from dipjax.theory import (decoder_jacobian, filter_recursion, jacobian_spectrum_facts, predicted_wmv,
                           heckel_soltanolkotabi_factors, theorem1_terms, two_layer_decoder,
                           wmv_detection)
from dipjax.theory.compressive_sensing import conv_matrix, gaussian_filter


@pytest.mark.parametrize("boundary, mode", [("zero", "constant"), ("circular", "wrap")])
def test_conv_matrix_matches_scipy(boundary, mode):
    kernel = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
    x = np.random.default_rng(0).normal(size=11)
    np.testing.assert_allclose(conv_matrix(11, kernel, boundary) @ x, convolve1d(x, kernel[::-1], mode=mode, cval=0.0),
                               atol=1e-12)


def test_spectrum_facts_on_a_jacobian_with_known_svd():
    n, p = 32, 8
    dct_basis = dct(np.eye(n), type=2, norm="ortho", axis=0)
    right = np.linalg.qr(np.random.default_rng(1).normal(size=(3 * n, n)))[0]
    jac = (dct_basis * 0.8 ** np.arange(n)) @ right.T
    facts = jacobian_spectrum_facts(jac, p=p)
    assert facts.gamma == pytest.approx(0.8, rel=1e-10)
    np.testing.assert_array_equal(facts.dct_index, np.arange(p))
    np.testing.assert_allclose(facts.dct_overlap, 1.0, atol=1e-10)
    assert facts.subspace_overlap == pytest.approx(1.0)


def test_two_layer_decoder_jacobian_is_trigonometric_and_decays_geometrically(x64):
    apply, c0 = two_layer_decoder(jax.random.PRNGKey(0), 64, 512)
    jac = decoder_jacobian(apply, c0)
    eps = 1e-6
    e = jnp.zeros(c0.size, jnp.float64).at[5].set(1.0).reshape(c0.shape)
    fd = (apply(c0 + eps * e) - apply(c0 - eps * e)) / (2 * eps)
    np.testing.assert_allclose(jac[:, 5], fd, atol=1e-8)
    facts = jacobian_spectrum_facts(jac, p=10)
    assert facts.subspace_overlap > 0.9  # the top-10 singular subspace lies in the first 10 DCT vectors
    assert np.all(np.abs(facts.dct_index - np.arange(10)) <= 1)  # ordered by frequency
    assert 0.9 < facts.gamma < 0.995
    assert np.all(np.diff(facts.singular_values[:10]) < 0)


def test_heckel_soltanolkotabi_factors(x64):
    rng = np.random.default_rng(2)
    n = 32
    apply, c0 = two_layer_decoder(jax.random.PRNGKey(1), n, 128)
    jac = np.asarray(decoder_jacobian(apply, c0))
    x = np.convolve(rng.normal(size=n), gaussian_filter(3.0), mode="same")
    eta = 0.5 / np.linalg.norm(jac, 2) ** 2
    taus = [0, 10, 100, 1000]
    # with A = I the measurement factor vanishes and the spectral factor is the exact linearised error
    exact = heckel_soltanolkotabi_factors(jac, np.eye(n), x, eta, taus, p=8)
    assert exact.measurement < 1e-12
    np.testing.assert_allclose(exact.spectral, exact.linearised_error, rtol=1e-9)
    assert exact.spectral[0] == pytest.approx(np.linalg.norm(x))
    # Gaussian A: δ_p is of the order sqrt(p/m) and shrinks with more measurements
    deltas = []
    for m in (16, 64, 256):
        a = rng.normal(size=(m, n)) / np.sqrt(m)
        f = heckel_soltanolkotabi_factors(jac, a, x, eta, taus, p=8)
        assert 0.3 < f.measurement / f.measurement_scale < 4.0
        deltas.append(f.measurement)
    assert deltas[0] > deltas[1] > deltas[2]


def _jacobian_with_known_svd(rng, n=40, p=160, decay=0.8):
    w = np.linalg.qr(rng.normal(size=(n, n)))[0]
    v = np.linalg.qr(rng.normal(size=(p, n)))[0]
    s = decay ** np.arange(n)
    return (w * s) @ v.T, w, s


def test_theorem1_terms_match_a_known_svd():
    rng = np.random.default_rng(5)
    jac, w, s = _jacobian_with_known_svd(rng)
    x = rng.normal(size=40)
    for m in (3, 4, 10, 31):
        terms = theorem1_terms(jac, x, m)
        # independent: Σ σ_i⁻² <w_i, x>² over the known SVD, and the tail over 1-based i > 2m/3 by explicit loop
        smooth = sum((w[:, i] @ x) ** 2 / s[i] ** 2 for i in range(40))
        tail = sum(s[i - 1] ** 2 for i in range(1, 41) if i > 2 * m / 3)
        assert terms.smoothness == pytest.approx(smooth, rel=1e-10)
        assert terms.tail == pytest.approx(tail, rel=1e-10)
        assert terms.bound == pytest.approx(smooth * tail, rel=1e-10)
    # a signal with energy outside the Jacobian's range is not smooth at all
    rank_deficient = (w[:, :30] * s[:30]) @ np.linalg.qr(rng.normal(size=(160, 30)))[0].T
    assert theorem1_terms(rank_deficient, x, 10).smoothness == np.inf
    assert np.isfinite(theorem1_terms(rank_deficient, w[:, :30] @ rng.normal(size=30), 10).smoothness)


def test_theorem1_bounds_the_min_norm_solution_of_eq7():
    """On random problems (a Jacobian with geometric spectrum, Gaussian A, signals of decaying coefficients), the
    minimum-norm solution of eq. (7), x̂ = J Jᵀ Aᵀ (A J Jᵀ Aᵀ)⁻¹ A x*, satisfies ‖x̂ − x*‖² ≤ smoothness × tail
    (C = 1 in every trial here), and exactly ‖x̂ − x*‖²_K⁻¹ ≤ smoothness (the error is a K⁻¹-orthogonal projection)."""
    rng = np.random.default_rng(6)
    ratios = []
    for trial in range(40):
        jac, w, s = _jacobian_with_known_svd(rng)
        m = int(rng.integers(6, 32))
        a = rng.normal(size=(m, 40)) / np.sqrt(m)
        x = w @ (rng.normal(size=40) * 0.7 ** np.arange(40))
        kernel = jac @ jac.T
        x_hat = kernel @ a.T @ np.linalg.solve(a @ kernel @ a.T, a @ x)
        err = x - x_hat
        terms = theorem1_terms(jac, x, m)
        assert err @ np.linalg.solve(kernel, err) <= terms.smoothness * (1 + 1e-8)
        ratios.append(float(err @ err) / terms.bound)
    print("‖x̂ − x*‖² / (smoothness · tail): max", max(ratios), "median", np.median(ratios))
    assert max(ratios) <= 1.0
    assert np.median(ratios) < 0.1  # the bound is not vacuous either: typical errors sit well below it


def test_windowed_moving_variance_matches_a_direct_loop():
    frames = np.random.default_rng(3).normal(size=(30, 4, 5))
    w = 7
    direct = [np.mean([np.mean((f - frames[j:j + w].mean(axis=0)) ** 2) for f in frames[j:j + w]])
              for j in range(30 - w + 1)]
    np.testing.assert_allclose(windowed_moving_variance(frames, w), direct, rtol=1e-10)
    # late in a run the variance is ~1e-12 of the pixel values: no cancellation allowed
    late = 0.5 + 1e-6 * frames
    np.testing.assert_allclose(windowed_moving_variance(late, w), 1e-12 * np.asarray(direct), rtol=1e-6)
    with pytest.raises(ValueError, match="window"):
        windowed_moving_variance(frames, 31)


def test_predicted_wmv_is_the_wmv_of_the_recursion(x64):
    rng = np.random.default_rng(4)
    n = 6
    basis = np.linalg.qr(rng.normal(size=(n, n)))[0]
    k = (basis * np.geomspace(1.0, 1e-3, n)) @ basis.T
    y = rng.normal(size=n)
    rec = filter_recursion(k, np.eye(n), 1.0)
    wmv, frames = predicted_wmv(rec, y, 300, 20)
    assert frames.shape == (301, n) and wmv.shape == (282,)
    direct = np.array([np.var(frames[j:j + 20], axis=0).mean() for j in range(282)])
    np.testing.assert_allclose(wmv, direct, rtol=1e-8)
    assert wmv_detection(wmv, 20) == int(np.argmin(direct)) + 19


def test_fig4_script_tiny_run(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent.parent / "experiments"))
    import fig4_ntk_1d

    before = jax.config.jax_enable_x64
    fig4_ntk_1d.main(["--quick", "--n", "32", "--steps", "400", "--deep", "3", "--width", "64",
                      "--out", str(tmp_path)])
    assert jax.config.jax_enable_x64 == before  # the script runs in float64 without leaving it switched on
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("iterations", "psnr_training", "psnr_ntk", "ntk_singular_values", "cond_3_layers", "cond_15_hidden"):
        assert key in metrics
    assert len(metrics["psnr_training"]) == len(metrics["psnr_ntk"]) == 401
    # The reported spectrum against an independent computation: the Jacobian by jax.jacrev over the flattened
    # parameters (not dipjax's empirical_ntk), J Jᵀ, numpy's eigenvalues and condition number.
    with jax.enable_x64(True):
        z = jnp.asarray(fig4_ntk_1d.fourier_input(32))
        k_net = jax.random.split(jax.random.PRNGKey(0), 4)[2]
        _, apply, params, _ = fig4_ntk_1d.ntk_of(64, 2, z, k_net, 2 ** 0.5, 0.1)
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        jac = np.asarray(jax.jacrev(lambda v: apply(unravel(v), z))(flat))
    kernel = jac @ jac.T
    eig = np.sort(np.linalg.eigvalsh(kernel))[::-1]
    np.testing.assert_allclose(metrics["ntk_singular_values"], eig, rtol=1e-5)
    assert metrics["cond_3_layers"] == pytest.approx(np.linalg.cond(kernel), rel=1e-4)
    assert (tmp_path / "figure.png").stat().st_size > 10_000
