"""Eq. (6) in closed form against iterating it; Theorem 2's limit in each regime; Theorem 3 against Monte Carlo."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dipjax.operators import Inpainting
from dipjax.theory import (expected_squared_error, filter_recursion, gradient_flow, iterate, iterate_naive, limit,
                           operator_matrix, psnr_curve, stable_step_size, theorem2_regime)


def _kernel(rng, n, rank=None, eigenvalues=None, basis=None):
    basis = np.linalg.qr(rng.normal(size=(n, n)))[0] if basis is None else basis
    lam = rng.uniform(0.2, 2.0, n) if eigenvalues is None else np.asarray(eigenvalues, float)
    if rank is not None:
        lam[rank:] = 0.0
    return (basis * lam) @ basis.T, basis


def test_closed_form_matches_iterating_and_gradient_flow_is_its_small_step_limit(x64):
    rng = np.random.default_rng(0)
    n, m = 10, 6
    k, _ = _kernel(rng, n)
    a = rng.normal(size=(m, n)) / np.sqrt(m)
    y = rng.normal(size=m)
    f0 = rng.normal(size=n) * 0.1
    rec = filter_recursion(k, a, eta=0.5)
    eta = 0.9 * stable_step_size(rec)
    rec = filter_recursion(k, a, eta)
    naive = iterate_naive(k, a, y, eta, 300, f0)
    ts = jnp.array([1, 7, 50, 300])
    np.testing.assert_allclose(iterate(rec, y, ts, f0), naive[ts - 1], rtol=1e-10, atol=1e-12)
    assert np.allclose(iterate(rec, y, 0, f0), f0)
    # gradient flow: eq. (6) with a 1000x smaller step, 1000x more steps
    small = filter_recursion(k, a, eta / 1000)
    np.testing.assert_allclose(gradient_flow(rec, y, eta * 40, f0), iterate(small, y, 40_000, f0), rtol=1e-3)


def test_operator_and_matrix_give_the_same_recursion(x64):
    mask = jnp.asarray(np.random.default_rng(1).random((4, 4)) > 0.4, jnp.float64)
    op = Inpainting.from_mask(mask, channels=1)
    a = operator_matrix(op)
    assert a.shape == (16, 16) and np.allclose(np.diag(np.asarray(a)), np.asarray(mask).ravel())
    k, _ = _kernel(np.random.default_rng(2), 16)
    y = np.random.default_rng(3).random(16)
    np.testing.assert_allclose(iterate(filter_recursion(k, op, 0.3), y, 20),
                               iterate(filter_recursion(k, a, 0.3), y, 20), rtol=1e-12)
    x = np.linspace(0, 1, 16)
    curve = psnr_curve(filter_recursion(k, a, 0.3), a @ x, x, [0, 10, 100])
    assert curve.shape == (3,) and float(curve[2]) > float(curve[0])


def _converged(k, a, y, f0=None):
    rec = filter_recursion(k, a, 1.0)
    rec = filter_recursion(k, a, 0.9 * stable_step_size(rec))
    return limit(rec, y, f0), iterate_naive(k, a, y, rec.eta, 20_000, f0)[-1]


def test_theorem2_nonsingular_kernel(x64):
    """K > 0: the limit fits the data and equals f0 + K Aᵀ (A K Aᵀ)⁻¹ (y − A f0) (A of full row rank)."""
    rng = np.random.default_rng(4)
    n, m = 8, 5
    k, _ = _kernel(rng, n)
    a = rng.normal(size=(m, n))
    x, f0 = rng.random(n), 0.1 * rng.normal(size=n)
    y = a @ x + 0.05 * rng.normal(size=m)
    f_inf, f_iter = _converged(k, a, y, f0)
    assert theorem2_regime(k, a, x).regime == "nonsingular"
    assert np.max(np.abs(f_inf - f_iter)) < 1e-8
    np.testing.assert_allclose(f_inf, f0 + k @ a.T @ np.linalg.solve(a @ k @ a.T, y - a @ f0), atol=1e-10)
    np.testing.assert_allclose(a @ f_inf, y, atol=1e-10)


def test_theorem2_singular_kernel_regimes(x64):
    """K singular, built so N(A) ∩ R(K) is spanned by an eigenvector v of K (then the Euclidean and the K⁺ conditions
    agree): x with a component along v (regime "singular"), x ⟂ v but outside R(K), and x ∈ R(K) ⟂ v, which is
    recovered exactly from noiseless data."""
    rng = np.random.default_rng(5)
    n, rank = 8, 5
    k, basis = _kernel(rng, n, rank=rank)
    v = basis[:, 0]  # in R(K)
    # A: m = 6 rows orthogonal to v but generic otherwise, so N(A) ∩ R(K) = span{v}
    rows = rng.normal(size=(6, n))
    a = rows - np.outer(rows @ v, v)
    cases = {
        "singular": basis[:, :rank] @ rng.normal(size=rank) + basis[:, rank:] @ rng.normal(size=n - rank),
        "singular, P x = 0": basis[:, 1:rank] @ rng.normal(size=rank - 1) + basis[:, rank:] @ rng.normal(size=3),
        "exact recovery": basis[:, 1:rank] @ rng.normal(size=rank - 1),
    }
    for regime, x in cases.items():
        info = theorem2_regime(k, a, x)
        assert info.regime == regime and info.kernel_rank == rank and info.intersection_dim == 1
        f_inf, f_iter = _converged(k, a, a @ x)
        assert np.max(np.abs(f_inf - f_iter)) < 1e-8, regime
        if regime == "exact recovery":
            np.testing.assert_allclose(f_inf, x, atol=1e-8)
        else:
            assert np.linalg.norm(f_inf - x) > 1e-3


def test_theorem2_euclidean_condition_is_not_enough_in_general(x64):
    """When N(A) ∩ R(K) is not an eigenspace of K, x ∈ R(K) with P x = 0 (Euclidean) is not recovered exactly; the
    K⁺-orthogonal condition is the one that decides (this is why theorem2_regime reports both)."""
    rng = np.random.default_rng(6)
    n, rank = 8, 5
    basis = np.linalg.qr(rng.normal(size=(n, n)))[0]
    k = (basis[:, :rank] * rng.uniform(0.5, 3.0, rank)) @ basis[:, :rank].T
    a = rng.normal(size=(4, n))  # N(A) ∩ R(K) is 1-D and generic
    info0 = theorem2_regime(k, a, basis[:, 0])
    assert info0.intersection_dim == 1
    _, _, vt = np.linalg.svd(a @ basis[:, :rank])
    v = basis[:, :rank] @ vt[-1]
    x = basis[:, :rank] @ rng.normal(size=rank)
    x = x - v * (v @ x)  # Euclidean projection onto the intersection removed
    info = theorem2_regime(k, a, x)
    assert info.null_component < 1e-12 and info.null_component_kernel_metric > 1e-6
    assert info.regime == "singular"
    f_inf, _ = _converged(k, a, a @ x)
    assert np.linalg.norm(f_inf - x) > 1e-6


def test_theorem3_matches_monte_carlo(x64):
    """E‖f_t − x‖² from Theorem 3 against 4000 noise draws run through eq. (6) step by step."""
    rng = np.random.default_rng(7)
    n, m, sigma = 12, 8, 0.3
    k, _ = _kernel(rng, n)
    a = rng.normal(size=(m, n)) / np.sqrt(m)
    x = rng.random(n)
    rec = filter_recursion(k, a, 1.0)
    eta = 0.5 * stable_step_size(rec)
    rec = filter_recursion(k, a, eta)
    draws = 4000
    noise = sigma * jax.random.normal(jax.random.PRNGKey(0), (draws, m), jnp.float64)
    ys = a @ x + noise
    steps = 200
    traj = jax.vmap(lambda y: iterate_naive(k, a, y, eta, steps))(ys)  # (draws, steps, n)
    for t in (1, 5, 30, 200):
        err = np.sum((np.asarray(traj[:, t - 1]) - x) ** 2, axis=1)
        mean, se = err.mean(), err.std(ddof=1) / np.sqrt(draws)
        theory = expected_squared_error(rec, x, sigma, t)
        assert abs(mean - float(theory.total)) < 3 * se, (t, mean, float(theory.total), se)
        assert theory.nu.shape == (m,)


def test_bad_shapes_are_refused(x64):
    with pytest.raises(ValueError, match="shape"):
        filter_recursion(np.eye(4), np.ones((3, 5)), 0.1)
    with pytest.raises(ValueError, match="eta"):
        filter_recursion(np.eye(4), np.ones((3, 4)), 0.0)
