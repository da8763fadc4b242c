"""An independent implementation of the infinite-width NNGP/NTK recursions, for testing ``dipjax.theory.stax``.

It shares the conventions (NTK parameterisation, W_std/√fan_in, mean-over-channels input kernel) but none of the
code or the formulas' form:

* kernels are dense ``(N·P) × (N·P)`` matrices over (input, position) pairs, and a convolution is the sum over
  filter offsets of explicit shift matrices ``S_δ K S_δᵀ`` (zero rows where SAME padding reads outside, wrapped
  indices for CIRCULAR, a smaller output for VALID);
* Gaussian expectations of the nonlinearities are computed by numerical integration (``scipy.integrate.quad``) of
  the conditional expectation ``E[φ(v) | u]`` against the density of u, not by the arc-cosine / arcsine closed forms.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import integrate, special


def shift_matrices(spatial, filter_shape, padding):
    """``(out_spatial, [S_δ])``: ``(S_δ K)[i] = K[i + δ]`` per position, over all filter offsets δ."""
    spatial = tuple(spatial)
    if padding == "VALID":
        out = tuple(s - f + 1 for s, f in zip(spatial, filter_shape))
        offsets = list(itertools.product(*[range(f) for f in filter_shape]))
    else:
        out = spatial
        offsets = list(itertools.product(*[range(-(f // 2), f // 2 + 1) for f in filter_shape]))
    p_in, p_out = math.prod(spatial), math.prod(out)
    mats = []
    for off in offsets:
        s = np.zeros((p_out, p_in))
        for i, pos in enumerate(itertools.product(*[range(o) for o in out])):
            src = [p + d for p, d in zip(pos, off)]
            if padding == "CIRCULAR":
                src = [v % n for v, n in zip(src, spatial)]
            elif any(v < 0 or v >= n for v, n in zip(src, spatial)):
                continue
            s[i, np.ravel_multi_index(src, spatial)] = 1.0
        mats.append(s)
    return out, mats


class Ref:
    """Joint kernel state: ``nngp``/``ntk`` of shape (N·P, N·P), inputs major, positions in C order."""

    def __init__(self, x):
        x = np.asarray(x, np.float64)
        self.n, self.spatial, c = x.shape[0], x.shape[1:-1], x.shape[-1]
        flat = x.reshape(-1, c)
        self.nngp = flat @ flat.T / c
        self.ntk = np.zeros_like(self.nngp)

    @property
    def p(self):
        return math.prod(self.spatial)

    def conv(self, filter_shape, padding, w_std, b_std):
        out, mats = shift_matrices(self.spatial, filter_shape, padding)
        big = [np.kron(np.eye(self.n), s) for s in mats]
        avg = lambda k: sum(s @ k @ s.T for s in big) / len(big)  # noqa: E731
        nngp = w_std ** 2 * avg(self.nngp) + (b_std or 0.0) ** 2
        self.ntk = w_std ** 2 * avg(self.ntk) + nngp
        self.nngp, self.spatial = nngp, out

    def dense(self, w_std, b_std):
        self.conv((), "VALID", w_std, b_std)

    def nonlinearity(self, kind, **kw):
        q = np.diag(self.nngp).copy()
        nngp = np.empty_like(self.nngp)
        dot = np.empty_like(self.nngp)
        for a in range(len(q)):
            for b in range(a, len(q)):
                nngp[a, b], dot[a, b] = gaussian_expectations(kind, q[a], q[b], self.nngp[a, b], **kw)
                nngp[b, a], dot[b, a] = nngp[a, b], dot[a, b]
        self.nngp, self.ntk = nngp, self.ntk * dot

    def flatten(self):
        self._reduce(lambda blk: np.trace(blk) / self.p)

    def global_avg_pool(self):
        self._reduce(lambda blk: blk.mean())

    def _reduce(self, fn):
        p = self.p
        red = lambda k: np.array([[fn(k[i * p:(i + 1) * p, j * p:(j + 1) * p]) for j in range(self.n)]  # noqa: E731
                                  for i in range(self.n)])
        self.nngp, self.ntk, self.spatial = red(self.nngp), red(self.ntk), ()

    def natural(self, which="ntk"):
        """The kernel in dipjax's natural axis order (N1, N2, H1, H2, W1, W2)."""
        k = getattr(self, which)
        d = len(self.spatial)
        k = k.reshape((self.n,) + self.spatial + (self.n,) + self.spatial)
        order = [0, d + 1] + [ax for i in range(d) for ax in (1 + i, d + 2 + i)]
        return k.transpose(order)


def _pdf(t):
    return math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)


def gaussian_expectations(kind, qa, qb, cab, a=0.0, b=1.0, erf_a=1.0, erf_b=1.0, erf_c=0.0):
    """``(E[φ(u)φ(v)], E[φ'(u)φ'(v)])`` for (u, v) ~ N(0, [[qa, cab], [cab, qb]]) by 1-D quadrature over u."""
    if qa <= 0 or qb <= 0:
        return 0.0, 0.0
    rho = cab / qa
    s = math.sqrt(max(qb - cab * cab / qa, 0.0))
    s = max(s, 1e-150)
    sd = math.sqrt(qa)

    if kind == "abrelu":  # φ(v) = b·max(v, 0) + a·min(v, 0) = b R(v) − a R(−v)
        def phi(u):
            return b * max(u, 0.0) + a * min(u, 0.0)

        def cond_phi(m):
            pos = m * special.ndtr(m / s) + s * _pdf(m / s)  # E[R(v)]
            neg = -m * special.ndtr(-m / s) + s * _pdf(m / s)  # E[R(−v)]
            return b * pos - a * neg

        def dphi(u):
            return b if u > 0 else a

        def cond_dphi(m):
            return b * special.ndtr(m / s) + a * special.ndtr(-m / s)
    elif kind == "erf":
        def phi(u):
            return erf_a * special.erf(erf_b * u) + erf_c

        def cond_phi(m):
            return erf_a * special.erf(erf_b * m / math.sqrt(1 + 2 * erf_b ** 2 * s * s)) + erf_c

        def dphi(u):
            return erf_a * erf_b * 2 / math.sqrt(math.pi) * math.exp(-(erf_b * u) ** 2)

        def cond_dphi(m):
            g = 1 + 2 * erf_b ** 2 * s * s
            return erf_a * erf_b * 2 / math.sqrt(math.pi) * math.exp(-erf_b ** 2 * m * m / g) / math.sqrt(g)
    else:
        raise ValueError(kind)

    def integral(f):
        total = 0.0
        for lo, hi in ((-np.inf, 0.0), (0.0, np.inf)):
            val, _ = integrate.quad(lambda u: f(u) * _pdf(u / sd) / sd, lo, hi, epsabs=1e-14,
                                    epsrel=1e-12, limit=200)
            total += val
        return total

    return (integral(lambda u: phi(u) * cond_phi(rho * u)), integral(lambda u: dphi(u) * cond_dphi(rho * u)))
