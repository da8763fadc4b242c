"""Theorem 1 of the survey (compressive sensing with an un-trained decoder), the factors of the original
Heckel–Soltanolkotabi analysis, and the two Jacobian facts they rest on.

**Theorem 1 as the survey states it** (:func:`theorem1_terms`). For the decoder's Jacobian ``J = W Σ Vᵀ`` (n × P,
singular values σ₁ ≥ σ₂ ≥ … and left singular vectors wᵢ) and m Gaussian measurements, the minimum-norm solution of
the linearised problem (survey eq. (7): fit ``A J c = y`` with the smallest ‖c‖, image ``x̂ = J c``) obeys

    ‖x̂ − x*‖² ≤ C · (Σᵢ σᵢ⁻² ⟨wᵢ, x*⟩²) · (Σ_{i > 2m/3} σᵢ²)

— the *smoothness* of x* in the Jacobian's basis (its squared norm in the kernel's ``(J Jᵀ)⁻¹`` metric, infinite if x*
leaves the Jacobian's range) times the *tail* energy of the spectrum beyond the first 2m/3 singular values. The
absolute constant C is not computed. Why the product: ``x* − x̂`` is the ``(J Jᵀ)⁻¹``-orthogonal projection of x* onto
the null space of A, so its kernel norm is at most the smoothness term, and for Gaussian A the largest ratio of the
Euclidean to the kernel norm on that random (n − m)-dimensional null space is governed by the spectral tail.
``tests/test_theory_cs_es.py`` checks both the terms (against a Jacobian built from a known SVD) and the bound with
C = 1 on random problems.

**The Heckel–Soltanolkotabi factors** (:func:`heckel_soltanolkotabi_factors`, ICML 2020): their time-dependent
analysis of gradient descent on ``½‖A G(C) − y‖²`` for the two-layer decoder ``G(C) = ReLU(U C) v`` (U a fixed
convolution, C ∈ R^{n×k} trained, v fixed ±1/√k) bounds the error after τ steps by two factors:

* the **spectral factor** ``‖Σ_i (1 − η σ_i²)^τ ⟨w_i, x⟩ w_i‖`` — the error of the same dynamics with ``AᵀA``
  replaced by its expectation ``I``: small after τ steps when x's energy sits on the leading left singular vectors;
* the **measurement factor** ``δ_p = ‖W_pᵀ (AᵀA − I) W_p‖₂`` — how far A is from an isometry on the span of the
  leading p singular vectors, of order ``√(p/m)`` for Gaussian A (so m ≳ p measurements suffice).

Beside them it returns the actual error of the linearised dynamics ``‖(I − η J Jᵀ AᵀA)^τ x‖`` so a user can see
how the two factors bracket it. (The published statement carries absolute constants and a width condition on k;
dipjax evaluates the factors, not those constants.)

The two Jacobian facts, measured by :func:`jacobian_spectrum_facts`: the left singular vectors of the decoder's
Jacobian are close to trigonometric functions ordered by frequency (overlap with the DCT-II basis), and the
singular values decay geometrically (a fitted ratio γ with ``σ_i ≈ σ_1 γ^{i−1}``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.fft import dct


def conv_matrix(n: int, kernel, boundary: str = "zero") -> np.ndarray:
    """The ``n × n`` matrix of a centred convolution with ``kernel`` (odd length), zero or circular boundary."""
    kernel = np.asarray(kernel, np.float64)
    if kernel.ndim != 1 or kernel.size % 2 == 0:
        raise ValueError(f"kernel must be 1-D of odd length, got shape {kernel.shape}")
    if boundary not in ("zero", "circular"):
        raise ValueError(f"boundary must be 'zero' or 'circular', got {boundary!r}")
    r = kernel.size // 2
    u = np.zeros((n, n))
    for i in range(n):
        for j, w in enumerate(kernel):
            col = i + j - r
            if boundary == "circular":
                u[i, col % n] += w
            elif 0 <= col < n:
                u[i, col] += w
    return u


def gaussian_filter(std: float) -> np.ndarray:
    """Normalised Gaussian filter of standard deviation ``std`` pixels, truncated at 3 std."""
    r = max(1, int(np.ceil(3 * std)))
    t = np.arange(-r, r + 1)
    w = np.exp(-t ** 2 / (2 * std ** 2))
    return w / w.sum()


def two_layer_decoder(key, n: int, k: int, kernel=None, boundary: str = "zero"):
    """``(apply, C0)`` for ``G(C) = ReLU(U C) v``: U the convolution with ``kernel`` (default a Gaussian of std 2
    pixels, the smoothing that upsampling layers apply), v = ±1/√k (half each), ``C0`` with i.i.d. N(0, 1) entries.
    ``apply(C)`` returns the length-n signal."""
    kernel = gaussian_filter(2.0) if kernel is None else kernel
    u = jnp.asarray(conv_matrix(n, kernel, boundary))
    v = jnp.concatenate([jnp.ones(k - k // 2), -jnp.ones(k // 2)]) / jnp.sqrt(k)
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    c0 = jax.random.normal(key, (n, k), dtype)
    return (lambda c: jax.nn.relu(u.astype(c.dtype) @ c) @ v.astype(c.dtype)), c0


def decoder_jacobian(apply, c0) -> jax.Array:
    """Jacobian ``∂G/∂vec(C)`` (n × n·k) at ``C0``."""
    return jax.jacrev(lambda flat: apply(flat.reshape(c0.shape)))(c0.reshape(-1))


class JacobianFacts(NamedTuple):
    singular_values: np.ndarray
    gamma: float  # fitted geometric decay ratio over the leading `fit` singular values
    dct_index: np.ndarray  # for each leading left singular vector, the DCT-II basis index it overlaps most
    dct_overlap: np.ndarray  # that largest squared overlap |⟨w_i, d_j⟩|²
    subspace_overlap: float  # ‖D_pᵀ W_p‖_F² / p: share of the top-p singular subspace in the first p DCT vectors


def jacobian_spectrum_facts(jacobian, p: int = 10, fit: int | None = None) -> JacobianFacts:
    """Measure the two facts of the theorem on a Jacobian (n × P): DCT overlap of the leading ``p`` left singular
    vectors and the geometric decay ratio fitted to the leading ``fit`` (default ``p``) singular values
    (least squares on ``log σ_i`` against i)."""
    jac = np.asarray(jacobian, np.float64)
    n = jac.shape[0]
    if not 1 <= p <= n:
        raise ValueError(f"need 1 <= p <= n = {n}, got p={p}")
    w, s, _ = np.linalg.svd(jac, full_matrices=False)
    fit = p if fit is None else fit
    slope = np.polyfit(np.arange(fit), np.log(s[:fit]), 1)[0]
    basis = dct(np.eye(n), type=2, norm="ortho", axis=0)  # column j = j-th DCT-II basis vector
    overlaps = (basis.T @ w[:, :p]) ** 2  # (n, p)
    return JacobianFacts(s, float(np.exp(slope)), overlaps.argmax(axis=0), overlaps.max(axis=0),
                         float(overlaps[:p].sum() / p))


class Theorem1Terms(NamedTuple):
    smoothness: float  # Σᵢ σᵢ⁻² ⟨wᵢ, x⟩² (inf if x has energy outside the Jacobian's range)
    tail: float  # Σ_{i > 2m/3} σᵢ²
    bound: float  # smoothness · tail, the right-hand side of Theorem 1 without its constant C


def theorem1_terms(jacobian, x, m: int, rtol: float | None = None) -> Theorem1Terms:
    """The two terms of the survey's Theorem 1 and their product for the Jacobian ``J`` (n × P), the signal ``x``
    (n entries) and ``m`` measurements (see the module docstring). Singular values below ``rtol · σ₁`` (default
    ``max(n, P) · eps``) count as zero: a component of x along their singular vectors makes the smoothness
    infinite. The sums run over all n singular values (1-based i > 2m/3)."""
    jac = np.asarray(jacobian, np.float64)
    x = np.asarray(x, np.float64).reshape(-1)
    if jac.ndim != 2 or jac.shape[0] != x.size:
        raise ValueError(f"the Jacobian must be (n, P) with n = {x.size} signal entries, got {jac.shape}")
    if not 1 <= m:
        raise ValueError(f"the number of measurements m must be positive, got {m}")
    w, s, _ = np.linalg.svd(jac, full_matrices=False)  # w: n × min(n, P); never the P × P right factor
    sigma = np.zeros(jac.shape[0])
    sigma[:s.size] = s
    coeff = w.T @ x
    rtol = max(jac.shape) * np.finfo(np.float64).eps if rtol is None else rtol
    zero = s <= rtol * s[0]
    # energy along singular vectors of (numerically) zero singular value, and outside the span of w when n > P
    outside = np.sum(coeff[zero] ** 2) + max(float(x @ x - coeff @ coeff), 0.0)
    if outside > rtol * float(x @ x):
        smoothness = float("inf")
    else:
        smoothness = float(np.sum(coeff[~zero] ** 2 / s[~zero] ** 2))
    tail = float(np.sum(sigma[(2 * m) // 3:] ** 2))
    return Theorem1Terms(smoothness, tail, smoothness * tail)


class Theorem1Factors(NamedTuple):
    spectral: np.ndarray  # per τ: ‖Σ_i (1 − ησ_i²)^τ ⟨w_i, x⟩ w_i‖
    measurement: float  # δ_p = ‖W_pᵀ (AᵀA − I) W_p‖₂
    measurement_scale: float  # √(p/m), the Gaussian concentration scale of δ_p
    linearised_error: np.ndarray  # per τ: ‖(I − η J Jᵀ AᵀA)^τ x‖ (noiseless, f_0 = 0)


def heckel_soltanolkotabi_factors(jacobian, a, x, eta: float, taus, p: int) -> Theorem1Factors:
    """Both factors of the Heckel–Soltanolkotabi analysis for a given Jacobian ``J`` (n × P), measurement matrix
    ``a`` (m × n) and signal x, at the iteration counts ``taus``; see the module docstring."""
    jac = np.asarray(jacobian, np.float64)
    a = np.asarray(a, np.float64)
    x = np.asarray(x, np.float64).reshape(-1)
    w, s, _ = np.linalg.svd(jac, full_matrices=False)
    coeff = w.T @ x
    taus = np.asarray(taus)
    spectral = np.array([np.linalg.norm((1 - eta * s ** 2) ** t * coeff) for t in taus])
    wp = w[:, :p]
    delta = np.linalg.norm(wp.T @ (a.T @ a - np.eye(a.shape[1])) @ wp, 2)
    step = np.eye(x.size) - eta * (jac @ jac.T) @ (a.T @ a)
    errors, e, done = [], x.copy(), 0
    for t in np.sort(taus):
        for _ in range(int(t) - done):
            e = step @ e
        done = int(t)
        errors.append(np.linalg.norm(e))
    order = np.argsort(np.argsort(taus))
    return Theorem1Factors(spectral, float(delta), float(np.sqrt(p / a.shape[0])), np.array(errors)[order])
