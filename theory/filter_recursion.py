"""The linearised DIP dynamics in closed form: the filter recursion (survey eq. 6), its limit (Theorem 2) and its
bias–variance MSE (Theorem 3).

In the NTK regime gradient descent on ``½‖A f_θ(z) − y‖²`` with step η moves the output as

    f_{t+1} = f_t + η K (Aᵀ y − AᵀA f_t)                                               (eq. 6)

with ``K`` the (constant) NTK over output pixels. Writing ``S = K^{1/2} AᵀA K^{1/2} = Q diag(s) Qᵀ``, the push-through
identity ``(I − ηKAᵀA)^j K = K^{1/2} (I − ηS)^j K^{1/2}`` gives, for every t at once,

    f_t = f_0 + F_t Aᵀ (y − A f_0),    F_t = K^{1/2} Q diag(φ_t(s)) Qᵀ K^{1/2},    φ_t(s) = (1 − (1 − ηs)^t) / s

(``φ_t(0) = ηt``), and ``I − F_t AᵀA = (I − ηKAᵀA)^t``. Gradient flow (η → 0 with τ = ηt fixed) replaces φ_t by
``(1 − e^{−τs}) / s``; t → ∞ (with ``0 < η s_max < 2``) by ``1/s`` on ``s > 0``, i.e.

    f_∞ = f_0 + K^{1/2} (A K^{1/2})⁺ (y − A f_0)                                         (Theorem 2)

the point of ``f_0 + R(K)`` that fits the data in least squares with the smallest ``K⁺``-norm step. With
``y = A x + n``, ``n ~ N(0, σ² I)``:

    E‖f_t − x‖² = ‖(I − ηKAᵀA)^t (f_0 − x)‖² + σ² Σ_i ν_{t,i}²,   ν_{t,i} the singular values of F_t Aᵀ   (Theorem 3)

(the survey states it for f_0 = 0; the squared error is summed over pixels, divide by n for a per-pixel MSE).

Everything is dense linear algebra on n × n matrices: use float64 (``jax_enable_x64``), as the tests do, because the
spectra of CNN kernels span many decades. ``A`` may be a matrix or any linear dipjax operator (made dense with
:func:`operator_matrix`). Signals are flat vectors of length n (``x.ravel()`` for an image).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def operator_matrix(operator, in_shape=None) -> jax.Array:
    """Dense matrix of a linear map on flattened signals: a matrix is returned as is, a dipjax operator (or any
    linear callable with ``in_shape``) is applied to every basis vector. Column j is ``A(e_j).ravel()``."""
    if isinstance(operator, (np.ndarray, jax.Array)):
        if operator.ndim != 2:
            raise ValueError(f"a measurement matrix must be 2-D, got shape {operator.shape}")
        return jnp.asarray(operator)
    shape = tuple(in_shape if in_shape is not None else operator.in_shape)
    n = int(np.prod(shape))
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    cols = jax.vmap(lambda e: operator(e.reshape(shape)).reshape(-1))(jnp.eye(n, dtype=dtype))
    return cols.T


def psd_sqrt(kernel: jax.Array) -> jax.Array:
    """Symmetric square root of a PSD matrix (negative rounding-level eigenvalues clipped to 0)."""
    w, v = jnp.linalg.eigh((kernel + kernel.T) / 2)
    return (v * jnp.sqrt(jnp.clip(w, 0.0, None))) @ v.T


class FilterRecursion(NamedTuple):
    """Spectral data of eq. (6) for one (K, A, η): build with :func:`filter_recursion`."""

    kernel: jax.Array  # K (n × n)
    matrix: jax.Array  # A (m × n)
    sqrt_kernel: jax.Array  # K^{1/2}
    basis: jax.Array  # Q, eigenvectors of S = K^{1/2} AᵀA K^{1/2}
    s: jax.Array  # eigenvalues of S (ascending, clipped at 0)
    eta: float


def filter_recursion(kernel, operator, eta: float, in_shape=None) -> FilterRecursion:
    """Precompute the eigendecomposition behind the closed form of eq. (6)."""
    kernel = jnp.asarray(kernel)
    a = operator_matrix(operator, in_shape)
    n = kernel.shape[0]
    if kernel.shape != (n, n) or a.shape[1] != n:
        raise ValueError(f"need K of shape (n, n) and A of shape (m, n), got {kernel.shape} and {a.shape}")
    if not eta > 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    sqrt_k = psd_sqrt(kernel)
    m_half = a @ sqrt_k
    s, q = jnp.linalg.eigh(m_half.T @ m_half)
    return FilterRecursion(kernel, a, sqrt_k, q, jnp.clip(s, 0.0, None), float(eta))


def stable_step_size(rec: FilterRecursion) -> float:
    """Gradient descent on eq. (6) converges for η < 2 / s_max."""
    return float(2.0 / jnp.max(rec.s))


def _relative_tol(s):
    return jnp.max(s) * s.shape[0] * jnp.finfo(s.dtype).eps


def _phi_discrete(s, eta, t):
    """(1 − (1 − ηs)^t)/s, accurate for small ηs (expm1/log1p) and equal to ηt at s = 0."""
    t = jnp.asarray(t, s.dtype)
    es = eta * s
    small = (es < 1.0) & (s > 0)
    safe_es = jnp.where(small, es, 0.5)
    via_log = -jnp.expm1(t * jnp.log1p(-safe_es)) / jnp.where(small, s, 1.0)
    direct = (1.0 - jnp.power(1.0 - es, t)) / jnp.where(s > 0, s, 1.0)
    return jnp.where(s > 0, jnp.where(small, via_log, direct), eta * t)


def _phi_flow(s, tau):
    tau = jnp.asarray(tau, s.dtype)
    return jnp.where(s > 0, -jnp.expm1(-tau * s) / jnp.where(s > 0, s, 1.0), tau)


def _phi_limit(s):
    keep = s > _relative_tol(s)
    return jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)


def _apply_filter(rec: FilterRecursion, phi, y, f0):
    f0 = jnp.zeros(rec.kernel.shape[0], rec.kernel.dtype) if f0 is None else jnp.asarray(f0).reshape(-1)
    r = jnp.asarray(y).reshape(-1) - rec.matrix @ f0
    coeff = rec.basis.T @ (rec.sqrt_kernel @ (rec.matrix.T @ r))
    return f0 + rec.sqrt_kernel @ (rec.basis @ (phi * coeff))


def iterate(rec: FilterRecursion, y, t, f0=None) -> jax.Array:
    """``f_t`` of eq. (6) in closed form; ``t`` a scalar (any non-negative integer, no iterating) or a 1-D array of
    them (returns ``(len(t), n)``)."""
    t = jnp.asarray(t)
    if t.ndim == 0:
        return _apply_filter(rec, _phi_discrete(rec.s, rec.eta, t), y, f0)
    return jax.vmap(lambda ti: _apply_filter(rec, _phi_discrete(rec.s, rec.eta, ti), y, f0))(t)


def gradient_flow(rec: FilterRecursion, y, tau, f0=None) -> jax.Array:
    """The η → 0 limit of eq. (6) at continuous time ``τ = η t`` (scalar or 1-D array)."""
    tau = jnp.asarray(tau)
    if tau.ndim == 0:
        return _apply_filter(rec, _phi_flow(rec.s, tau), y, f0)
    return jax.vmap(lambda ti: _apply_filter(rec, _phi_flow(rec.s, ti), y, f0))(tau)


def limit(rec: FilterRecursion, y, f0=None) -> jax.Array:
    """``f_∞`` of Theorem 2 (the t → ∞ limit of eq. 6; requires ``η < 2 / s_max`` for gradient descent to get
    there, which :func:`stable_step_size` gives)."""
    return _apply_filter(rec, _phi_limit(rec.s), y, f0)


def iterate_naive(kernel, matrix, y, eta: float, steps: int, f0=None) -> jax.Array:
    """Reference: run eq. (6) step by step; returns ``f_1 … f_steps`` as ``(steps, n)``."""
    kernel, matrix = jnp.asarray(kernel), jnp.asarray(matrix)
    b = matrix.T @ jnp.asarray(y).reshape(-1)
    f0 = jnp.zeros(kernel.shape[0], kernel.dtype) if f0 is None else jnp.asarray(f0).reshape(-1)

    def body(f, _):
        f = f + eta * kernel @ (b - matrix.T @ (matrix @ f))
        return f, f

    return jax.lax.scan(body, f0, None, length=steps)[1]


def filter_matrix(rec: FilterRecursion, t) -> jax.Array:
    """``F_t = η Σ_{j<t} (I − ηKAᵀA)^j K`` in closed form (n × n)."""
    phi = _phi_discrete(rec.s, rec.eta, t)
    return rec.sqrt_kernel @ (rec.basis * phi) @ rec.basis.T @ rec.sqrt_kernel


class BiasVariance(NamedTuple):
    bias: jax.Array  # ‖(I − ηKAᵀA)^t (f_0 − x)‖²
    variance: jax.Array  # σ² Σ ν_{t,i}²
    total: jax.Array  # E‖f_t − x‖² (summed over pixels)
    nu: jax.Array  # singular values of F_t Aᵀ


def expected_squared_error(rec: FilterRecursion, x, sigma: float, t, f0=None) -> BiasVariance:
    """Theorem 3: the expected squared error of ``f_t`` when ``y = A x + n``, ``n ~ N(0, σ² I)``."""
    x = jnp.asarray(x).reshape(-1)
    f0 = jnp.zeros_like(x) if f0 is None else jnp.asarray(f0).reshape(-1)
    ft = filter_matrix(rec, t)
    e0 = f0 - x
    bias_vec = e0 - ft @ (rec.matrix.T @ (rec.matrix @ e0))
    nu = jnp.linalg.svd(ft @ rec.matrix.T, compute_uv=False)
    bias = jnp.sum(bias_vec ** 2)
    variance = sigma ** 2 * jnp.sum(nu ** 2)
    return BiasVariance(bias, variance, bias + variance, nu)


def psnr_curve(rec: FilterRecursion, y, x, ts, f0=None, data_range: float = 1.0) -> jax.Array:
    """PSNR (dB, per-pixel MSE) of ``f_t`` against ``x`` for every ``t`` in ``ts``."""
    f = iterate(rec, y, jnp.asarray(ts), f0)
    mse = jnp.mean((f - jnp.asarray(x).reshape(-1)) ** 2, axis=-1)
    return 10 * jnp.log10(data_range ** 2 / mse)


# --- Theorem 2: which regime a problem is in ----------------------------------------------------------------------

class Theorem2Regime(NamedTuple):
    regime: str  # "nonsingular", "singular", "singular, P x = 0" or "exact recovery"
    kernel_rank: int
    intersection_dim: int  # dim N(A) ∩ R(K)
    null_component: float  # ‖P_{N(A)∩R(K)} x‖ (Euclidean projection, as the survey states the condition)
    null_component_kernel_metric: float  # the same with the projection orthogonal in ⟨u, v⟩_{K⁺}
    outside_range: float  # ‖P_{N(K)} x‖


def _orth_basis(mat, tol):
    u, sv, _ = jnp.linalg.svd(mat, full_matrices=False)
    return u[:, sv > tol]


def theorem2_regime(kernel, operator, x, *, rtol: float = 1e-9, in_shape=None) -> Theorem2Regime:
    """Classify ``(K, A, x)`` into the regimes of Theorem 2 and return the quantities that decide it.

    * ``"nonsingular"``: K ≻ 0; f_∞ = f_0 + K Aᵀ (A K Aᵀ)⁺ (y − A f_0) fits the (noisy) data exactly on R(Aᵀ).
    * ``"singular"``: K singular; f_∞ − f_0 ∈ R(K), the part of x in N(A) ∩ R(K) is not recovered.
    * ``"singular, P x = 0"``: K singular and x has no component in N(A) ∩ R(K).
    * ``"exact recovery"``: additionally x ∈ R(K); then with f_0 = 0 and noiseless data f_∞ = x.

    The survey writes the condition with the Euclidean projection. Exact recovery needs the projection that is
    orthogonal in the ``K⁺`` inner product (the limit is ``x − Π_K x`` for x ∈ R(K), ``Π_K`` that projection); the
    two agree when N(A) ∩ R(K) = {0} or is spanned by eigenvectors of K. Both are returned and the regime is
    decided by the exact one; ``tests/test_theory_recursion.py`` shows a case where only the Euclidean one vanishes.
    """
    kernel = jnp.asarray(kernel)
    a = operator_matrix(operator, in_shape)
    x = jnp.asarray(x).reshape(-1)
    w, v = jnp.linalg.eigh((kernel + kernel.T) / 2)
    keep = w > rtol * jnp.max(jnp.abs(w))
    rank = int(jnp.sum(keep))
    n = kernel.shape[0]
    range_k = v[:, keep]
    xnorm = float(jnp.linalg.norm(x)) or 1.0
    # N(A) ∩ R(K) = R(K) · N(A U_r), with U_r an orthonormal basis of R(K)
    au = a @ range_k
    _, sv, vt = jnp.linalg.svd(au, full_matrices=True)
    sv_full = jnp.zeros(rank, sv.dtype).at[: sv.shape[0]].set(sv)
    null_coeff = vt.T[:, sv_full <= rtol * max(float(jnp.max(sv)) if sv.size else 1.0, 1.0)]
    inter = range_k @ null_coeff
    euclid = float(jnp.linalg.norm(inter @ (inter.T @ x)))
    if inter.shape[1]:
        kp = (v[:, keep] / w[keep]) @ v[:, keep].T
        gram = inter.T @ kp @ inter
        coef = jnp.linalg.solve(gram, inter.T @ kp @ x)
        kmetric = float(jnp.linalg.norm(inter @ coef))
    else:
        kmetric = 0.0
    outside = float(jnp.linalg.norm(x - range_k @ (range_k.T @ x)))
    tol = 1e-7 * xnorm
    if rank == n:
        regime = "nonsingular"
    elif kmetric <= tol and outside <= tol:
        regime = "exact recovery"
    elif kmetric <= tol:
        regime = "singular, P x = 0"
    else:
        regime = "singular"
    return Theorem2Regime(regime, rank, int(inter.shape[1]), euclid, kmetric, outside)
