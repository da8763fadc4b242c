"""Implicit bias of factorised gradient flow (survey Theorem 4) and of Double Over-Parameterisation (DOP).

**Theorem 4 (Burer–Monteiro; Gunasekar et al. 2017).** For symmetric measurement matrices ``A_i`` and
``y_i = ⟨A_i, X*⟩``, gradient flow on ``L(U) = ¼ Σ_i (⟨A_i, U Uᵀ⟩ − y_i)²``,

    dU/dt = −(Σ_i r_i A_i) U,     r_i = ⟨A_i, U Uᵀ⟩ − y_i,     U(0) = α I,

converges, when the ``A_i`` commute and α → 0, to the minimum nuclear norm solution
``min ‖X‖_* s.t. 𝒜(X) = y, X ⪰ 0``. In the common eigenbasis Q (``A_i = Q diag(a_i) Qᵀ``) that convex problem is the
linear program ``min 1ᵀd s.t. ⟨a_i, d⟩ = y_i, d ≥ 0`` with ``X = Q diag(d) Qᵀ``, solved here by
``scipy.optimize.linprog`` — independently of the flow, which integrates the full ``n × n`` matrix U with an adaptive
ODE solver (``scipy.integrate.solve_ivp``, RK45 in float64) without using the common basis.

**DOP (You, Zhu, Qu, Ma 2020, survey eq. 18).** With sparse corruption ``y = 𝒜(X*) + s*``, the model
``𝒜(U Uᵀ) + g⊙g − h⊙h`` trained by gradient flow with learning rate 1 for U and α for (g, h), from
``U(0) = ε I``, ``g(0) = h(0) = ε 1``, converges as ε → 0 to ``min ‖X‖_* + λ ‖s‖₁ s.t. 𝒜(X) + s = y, X ⪰ 0`` with
``λ = 1/α`` (KKT of the ε → 0 limit: a nonzero ``s_i`` needs ``|ν_i| = 1/α`` where a nonzero eigenvalue of X needs
``(𝒜*ν)_j = 1``). The commuting-case program is again a linear program.

For non-commuting ``A_i`` :func:`factorised_gradient_flow` still runs (the exploration case: no closed form is known
in general, Li et al. 2018 / Razin & Cohen 2020 discuss when the nuclear-norm picture fails).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import linprog


def _measure(mats: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.einsum("mij,ij->m", mats, x)


def _check_measurements(mats) -> np.ndarray:
    mats = np.asarray(mats, dtype=np.float64)
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2]:
        raise ValueError(f"measurement matrices must have shape (m, n, n), got {mats.shape}")
    if not np.allclose(mats, np.swapaxes(mats, 1, 2)):
        raise ValueError("measurement matrices must be symmetric")
    return mats


def commuting_measurements(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Random commuting symmetric matrices ``A_i = Q diag(a_i) Qᵀ`` with a random orthogonal Q.

    Returns ``(mats (m, n, n), Q)``; the eigenvalues ``a_i`` are standard normal.
    """
    q = np.linalg.qr(rng.normal(size=(n, n)))[0]
    eig = rng.normal(size=(m, n))
    return np.einsum("ij,mj,kj->mik", q, eig, q), q


def common_eigenbasis(mats, *, atol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """``(Q, a)`` with ``A_i = Q diag(a[i]) Qᵀ`` for commuting symmetric ``A_i``; raises if they do not commute.

    Q diagonalises a random combination of the ``A_i`` (its eigenvalues are distinct with probability one when the
    family has simple joint spectrum).
    """
    mats = _check_measurements(mats)
    comb = np.einsum("m,mij->ij", np.random.default_rng(0).normal(size=len(mats)), mats)
    _, q = np.linalg.eigh(comb)
    rotated = np.einsum("ji,mjk,kl->mil", q, mats, q)
    diag = np.einsum("mii->mi", rotated)
    off = rotated - np.einsum("mi,ij->mij", diag, np.eye(mats.shape[1]))
    scale = max(1.0, float(np.abs(mats).max()))
    if np.abs(off).max() > atol * scale:
        raise ValueError("the measurement matrices do not commute (no common eigenbasis)")
    return q, diag


class FlowResult(NamedTuple):
    x: np.ndarray  # X(T) = U Uᵀ
    residual: float  # ‖𝒜(X) − y‖ (DOP: ‖𝒜(X) + s − y‖)
    times: np.ndarray
    nuclear_norm: np.ndarray  # ‖X(t)‖_* at the solver's output times
    s: np.ndarray | None = None  # DOP's sparse term g⊙g − h⊙h at T


def _integrate(rhs, v0: np.ndarray, t_end: float, rtol: float, scale: float, num_times: int):
    """RK45 from t = 0 to ``t_end`` with output at log-spaced times; ``atol`` scales with the initial size²."""
    sol = solve_ivp(rhs, (0.0, t_end), v0, method="RK45", rtol=rtol, atol=rtol * scale ** 2,
                    t_eval=np.geomspace(1e-3, t_end, num_times))
    if not sol.success:
        raise RuntimeError(f"ODE solver failed: {sol.message}")
    return sol


def _nuclear_norm(x: np.ndarray) -> float:
    return float(np.abs(np.linalg.eigvalsh(x)).sum())


def factorised_gradient_flow(mats, y, alpha: float, *, t_end: float = 2000.0, rtol: float = 1e-10,
                             u0: np.ndarray | None = None, num_times: int = 200) -> FlowResult:
    """Integrate ``dU/dt = −(Σ r_i A_i) U`` from ``U(0) = α I`` (or ``u0``) to ``t_end`` (any symmetric ``A_i``)."""
    mats = _check_measurements(mats)
    y = np.asarray(y, dtype=np.float64)
    n = mats.shape[1]
    u_init = alpha * np.eye(n) if u0 is None else np.asarray(u0, np.float64)

    def rhs(_, u_flat):
        u = u_flat.reshape(n, n)
        r = _measure(mats, u @ u.T) - y
        return (-np.einsum("m,mij->ij", r, mats) @ u).ravel()

    sol = _integrate(rhs, u_init.ravel(), t_end, rtol, alpha, num_times)
    us = sol.y.T.reshape(-1, n, n)
    xs = us @ np.swapaxes(us, 1, 2)
    nuc = np.array([_nuclear_norm(x) for x in xs])
    return FlowResult(xs[-1], float(np.linalg.norm(_measure(mats, xs[-1]) - y)), sol.t, nuc)


def min_nuclear_norm_commuting(mats, y) -> np.ndarray:
    """``argmin ‖X‖_* s.t. 𝒜(X) = y, X ⪰ 0`` for commuting ``A_i``, as a linear program in their eigenbasis."""
    q, a = common_eigenbasis(mats)
    res = linprog(np.ones(a.shape[1]), A_eq=a, b_eq=np.asarray(y, np.float64), bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"linear program failed: {res.message}")
    return (q * res.x) @ q.T


def dop_gradient_flow(mats, y, init_scale: float, lr_ratio: float, *, t_end: float = 2000.0,
                      rtol: float = 1e-10, num_times: int = 200) -> FlowResult:
    """Gradient flow of ``¼‖𝒜(UUᵀ) + g⊙g − h⊙h − y‖²`` with rate 1 for U and ``lr_ratio`` (α) for g and h."""
    mats = _check_measurements(mats)
    y = np.asarray(y, dtype=np.float64)
    m, n = mats.shape[0], mats.shape[1]

    def split(v):
        return v[: n * n].reshape(n, n), v[n * n: n * n + m], v[n * n + m:]

    def rhs(_, v):
        u, g, h = split(v)
        r = _measure(mats, u @ u.T) + g * g - h * h - y
        du = -np.einsum("m,mij->ij", r, mats) @ u
        return np.concatenate([du.ravel(), -lr_ratio * r * g, lr_ratio * r * h])

    v0 = np.concatenate([init_scale * np.eye(n).ravel(), np.full(m, init_scale), np.full(m, init_scale)])
    sol = _integrate(rhs, v0, t_end, rtol, init_scale, num_times)
    u, g, h = split(sol.y[:, -1])
    x = u @ u.T
    s = g * g - h * h
    nuc = np.array([_nuclear_norm(split(v)[0] @ split(v)[0].T) for v in sol.y.T])
    return FlowResult(x, float(np.linalg.norm(_measure(mats, x) + s - y)), sol.t, nuc, s)


def dop_convex_commuting(mats, y, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """``argmin ‖X‖_* + λ‖s‖₁ s.t. 𝒜(X) + s = y, X ⪰ 0`` for commuting ``A_i`` (a linear program); returns (X, s)."""
    q, a = common_eigenbasis(mats)
    m, n = a.shape
    cost = np.concatenate([np.ones(n), lam * np.ones(2 * m)])
    a_eq = np.hstack([a, np.eye(m), -np.eye(m)])
    res = linprog(cost, A_eq=a_eq, b_eq=np.asarray(y, np.float64), bounds=(0, None), method="highs")
    if res.status != 0:
        raise RuntimeError(f"linear program failed: {res.message}")
    d, sp, sn = res.x[:n], res.x[n: n + m], res.x[n + m:]
    return (q * d) @ q.T, sp - sn
