"""Classical reconstructions users compare DIP methods against, for any linear operator of dipjax:

* :func:`least_squares_cg` — conjugate gradients on the normal equations ``(AᴴA + λI) x = Aᴴy``: CG-SENSE for
  multi-coil MRI (Pruessmann et al. 2001), damped least squares elsewhere;
* :func:`tv_reconstruction` — ``min_x ½‖A x − y‖² + λ TV(x)`` (isotropic TV over all channels, so a complex image's
  TV is that of its modulus gradient), optionally with ``x ≥ 0``, by the primal–dual hybrid gradient method
  (Chambolle & Pock 2011) with step sizes from the operator norm; the TV-regularised reconstruction of the MRI and CT
  literature (Block et al. 2007; Sidky & Pan 2008);
* FBP for CT is :func:`dipjax.operators.ct.fbp`; zero-filled MRI is the operator's ``init_image``;
* :func:`hio_er` — Fienup's hybrid input–output followed by error reduction, best of several random starts, for
  Fourier phase retrieval (the spectral initialiser is the operator's ``init_image``).

Everything jits; images follow dipjax's conventions (complex images as two real channels).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def gradient(x):
    """Forward differences of ``(H, W, C)`` with a zero last difference (Neumann): ``(H, W, C, 2)``."""
    dv = jnp.concatenate([x[1:] - x[:-1], jnp.zeros_like(x[:1])], axis=0)
    dh = jnp.concatenate([x[:, 1:] - x[:, :-1], jnp.zeros_like(x[:, :1])], axis=1)
    return jnp.stack([dv, dh], axis=-1)


def gradient_adjoint(g):
    """The exact adjoint of :func:`gradient` (minus the divergence)."""
    return jax.linear_transpose(gradient, jax.ShapeDtypeStruct(g.shape[:-1], g.dtype))(g)[0]


def operator_norm(op, key, iters: int = 50, dtype=jnp.float32) -> jax.Array:
    """‖A‖₂ by power iteration on ``AᴴA`` from a random image."""
    x = jax.random.normal(key, op.in_shape, dtype)

    def body(_, v):
        w = op.normal(v)
        return w / jnp.linalg.norm(w)

    v = jax.lax.fori_loop(0, iters, body, x / jnp.linalg.norm(x))
    return jnp.sqrt(jnp.linalg.norm(op.normal(v)))


@functools.partial(jax.jit, static_argnames=("iters",))
def least_squares_cg(op, y, iters: int = 50, damping: float = 0.0, x0=None):
    """``iters`` conjugate-gradient steps on ``(AᴴA + damping·I) x = Aᴴy`` from ``x0`` (default 0). For multi-coil MRI
    this is CG-SENSE."""
    rhs = op.adjoint(y)
    x, _ = jax.scipy.sparse.linalg.cg(lambda v: op.normal(v) + damping * v, rhs,
                                      x0=jnp.zeros_like(rhs) if x0 is None else x0, maxiter=iters, tol=0.0)
    return x


@functools.partial(jax.jit, static_argnames=("iters", "nonnegative"))
def tv_reconstruction(op, y, lam: float, iters: int = 300, nonnegative: bool = False, x0=None, key=None):
    """PDHG for ``min_x ½‖A x − y‖² + lam · Σ_pixels ‖∇x(p)‖₂`` (the norm over both directions and all channels),
    with ``x ≥ 0`` if ``nonnegative``. Steps ``τ = σ = 0.99 / ‖K‖``, ``K = [A; ∇]``, ``‖K‖² ≤ ‖A‖² + 8``."""
    x = jnp.zeros_like(op.adjoint(y)) if x0 is None else x0
    norm_a = operator_norm(op, jax.random.key(0) if key is None else key, dtype=x.dtype)
    step = (0.99 / jnp.sqrt(norm_a**2 + 8.0)).astype(x.dtype)
    p = jnp.zeros_like(y)
    q = jnp.zeros(x.shape + (2,), x.dtype)

    def body(_, carry):
        x, x_bar, p, q = carry
        p = (p + step * (op(x_bar) - y)) / (1 + step)
        q = q + step * gradient(x_bar)
        q_norm = jnp.sqrt(jnp.sum(q**2, axis=(-2, -1), keepdims=True))
        q = q / jnp.maximum(1.0, q_norm / lam)
        x_new = x - step * (op.adjoint(p) + gradient_adjoint(q))
        if nonnegative:
            x_new = jnp.maximum(x_new, 0.0)
        return x_new, 2 * x_new - x, p, q

    x, _, _, _ = jax.lax.fori_loop(0, iters, body, (x, x, p, q))
    return x


@functools.partial(jax.jit, static_argnames=("starts", "hio_iterations", "er_iterations"))
def hio_er(op, y, key, starts: int = 8, hio_iterations: int = 1000, er_iterations: int = 200, beta: float = 0.9):
    """Fienup's phase retrieval for a :class:`~dipjax.operators.PhaseRetrieval` operator: ``hio_iterations`` of the
    hybrid input–output map then ``er_iterations`` of error reduction (Fienup 1982, Appl. Opt. 21, eqs. 11 and 5),
    with the object constraints *inside the image window and non-negative*. Per channel, ``starts`` random
    non-negative starts run in parallel and the one whose Fourier amplitudes fit the data best is returned — chosen by
    the measurement residual ``‖ |F pad x| − a ‖``, never by the ground truth.

    Returns ``(x, residuals, all_starts)``: the ``(H, W, C)`` estimate, the ``(starts, C)`` residuals and the
    ``(starts, H, W, C)`` estimates of every start (so a figure may also show the oracle-best start, labelled as such).
    """
    from dipjax.operators.mri import fft2c, ifft2c

    a = jnp.moveaxis(op.amplitudes(y), -1, 0)  # (C, P, P)
    support = jnp.moveaxis(op.padded(jnp.ones(op.in_shape[:2] + (1,), a.dtype)), -1, 0)  # (1, P, P)
    axes = (-2, -1)

    def fourier_projection(g):
        spectrum = fft2c(g, axes=axes)
        magnitude = jnp.abs(spectrum)
        phase = jnp.where(magnitude > 0, spectrum / jnp.where(magnitude > 0, magnitude, 1.0), 1.0)
        return jnp.real(ifft2c(a * phase, axes=axes))

    def hio(_, g):
        g_new = fourier_projection(g)
        keep = (support > 0) & (g_new >= 0)
        return jnp.where(keep, g_new, g - beta * g_new)

    def er(_, g):
        g_new = fourier_projection(g)
        return jnp.where((support > 0) & (g_new >= 0), g_new, 0.0)

    def one_start(k):
        scale = jnp.sqrt(jnp.sum(a**2, axis=axes, keepdims=True) / jnp.sum(support))  # the image's RMS (Parseval)
        g = jax.random.uniform(k, a.shape, a.dtype) * 2 * scale * support
        g = jax.lax.fori_loop(0, hio_iterations, hio, g)
        g = jax.lax.fori_loop(0, er_iterations, er, g)
        residual = jnp.sqrt(jnp.sum((jnp.abs(fft2c(g, axes=axes)) - a) ** 2, axis=axes))
        return op.crop(jnp.moveaxis(g, 0, -1)), residual

    estimates, residuals = jax.vmap(one_start)(jax.random.split(key, starts))  # (S, H, W, C), (S, C)
    best = jnp.argmin(residuals, axis=0)  # per channel
    x = jnp.take_along_axis(estimates, best[None, None, None, :], axis=0)[0]
    return x, residuals, estimates
