"""Empirical neural tangent kernel of any network ``apply(params, z)``: dense, matrix-free and its top spectrum.

The empirical NTK at parameters θ is ``K = J Jᵀ`` with ``J = ∂ vec f_θ(z) / ∂θ`` (n outputs × P parameters); it is the
kernel of the linearised DIP dynamics, survey eq. (6). Outputs are flattened in C order (for an image ``(H, W, C)``,
pixel-major with the channel fastest), so ``K[i, j]`` pairs ``f.ravel()[i]`` with ``f.ravel()[j]``.

Three ways to get it, cross-checked in ``tests/test_theory_ntk.py``:

* :func:`empirical_ntk` — the dense ``n × n`` matrix by chunked Jacobian contraction. With more parameters than
  outputs (every DIP network) it forms ``K`` column block by column block as ``J (Jᵀ E)`` for a block ``E`` of basis
  vectors (one reverse and one forward pass per column, memory ``chunk × P``); with fewer parameters than outputs it
  forms Jacobian columns by forward mode over parameter blocks and accumulates ``J_b J_bᵀ`` (memory ``n × chunk``).
* :func:`ntk_matvec` — the matrix-free product ``v ↦ J (Jᵀ v)`` (``jvp ∘ vjp``) for images too large for a dense K.
* :func:`finite_difference_ntk` — central differences of ``f`` in every parameter direction (small nets only).

:func:`lanczos_top_eigenpairs` gives the leading eigenpairs from the matrix-free product. For conditioning-sensitive
work (spectra spanning many decades) call these under ``jax.config.update("jax_enable_x64", True)`` with float64
parameters and inputs; the functions keep whatever dtype they are given.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

Apply = Callable[[object, jax.Array], jax.Array]


def module_apply(network) -> Apply:
    """``apply(params, z)`` for a Flax module whose variables are ``{"params": params}`` (every dipjax network)."""
    return lambda params, z: network.apply({"params": params}, z)


def flat_model(apply: Apply, params, z):
    """``(f, theta0)``: the network as a map from a flat parameter vector to its flattened output."""
    theta0, unravel = ravel_pytree(params)

    def f(theta):
        return apply(unravel(theta), z).reshape(-1)

    return f, theta0


def ntk_matvec(apply: Apply, params, z) -> Callable[[jax.Array], jax.Array]:
    """The matrix-free NTK product ``v ↦ J (Jᵀ v)`` (one reverse and one forward pass), jit-compiled.

    ``v`` may be flat ``(n,)`` or shaped like the network output; the result has the same shape as ``v``.
    """
    f, theta0 = flat_model(apply, params, z)
    _, vjp = jax.vjp(f, theta0)

    @jax.jit
    def matvec(v):
        (jt_v,) = vjp(v.reshape(-1))
        return jax.jvp(f, (theta0,), (jt_v,))[1].reshape(v.shape)

    return matvec


def empirical_ntk(apply: Apply, params, z, *, mode: str = "auto", chunk_size: int = 64) -> jax.Array:
    """Dense empirical NTK ``K = J Jᵀ`` (n × n, n = number of output entries).

    ``mode``: ``"reverse"`` (columns ``J (Jᵀ e_i)``, cost 2n passes), ``"forward"`` (Jacobian columns over parameter
    blocks, cost P forward passes), or ``"auto"``: reverse when there are at least as many parameters as outputs.
    """
    f, theta0 = flat_model(apply, params, z)
    n = int(np.prod(jax.eval_shape(f, theta0).shape))
    p = theta0.size
    if mode == "auto":
        mode = "reverse" if p >= n else "forward"
    if mode not in ("reverse", "forward"):
        raise ValueError(f"mode must be 'auto', 'reverse' or 'forward', got {mode!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    dtype = theta0.dtype

    if mode == "reverse":
        _, vjp = jax.vjp(f, theta0)

        @jax.jit
        def columns(start):
            basis = jax.nn.one_hot(start + jnp.arange(chunk_size), n, dtype=dtype)  # rows past n are all zero
            jt = jax.vmap(lambda e: vjp(e)[0])(basis)  # (chunk, P) = (Jᵀ E)ᵀ
            return jax.vmap(lambda t: jax.jvp(f, (theta0,), (t,))[1])(jt)  # (chunk, n) = (J Jᵀ E)ᵀ

        blocks = [columns(start) for start in range(0, n, chunk_size)]
        return jnp.concatenate(blocks, axis=0)[:n].T

    @jax.jit
    def gram_block(start):
        basis = jax.nn.one_hot(start + jnp.arange(chunk_size), p, dtype=dtype)
        jcols = jax.vmap(lambda e: jax.jvp(f, (theta0,), (e,))[1])(basis)  # (chunk, n) = J_bᵀ
        return jcols.T @ jcols

    kernel = jnp.zeros((n, n), dtype)
    for start in range(0, p, chunk_size):
        kernel = kernel + gram_block(start)
    return kernel


def finite_difference_ntk(apply: Apply, params, z, *, eps: float = 1e-6) -> jax.Array:
    """``K`` from a Jacobian by central differences, one parameter at a time (a reference for small networks).

    Use float64: with ``eps = 1e-6`` the truncation error is O(eps²) and the rounding error O(1e-16 / eps).
    """
    f, theta0 = flat_model(apply, params, z)
    step = jax.jit(lambda e: (f(theta0 + eps * e) - f(theta0 - eps * e)) / (2 * eps))
    eye = jnp.eye(theta0.size, dtype=theta0.dtype)
    jac = jnp.stack([step(eye[i]) for i in range(theta0.size)], axis=1)
    return jac @ jac.T


def lanczos_top_eigenpairs(matvec: Callable[[jax.Array], jax.Array], n: int, k: int, key, *,
                           iterations: int | None = None, dtype=None):
    """Leading ``k`` eigenpairs of a symmetric PSD operator given only ``v ↦ M v`` (Lanczos, full reorthogonalisation).

    Runs ``iterations`` (default ``min(n, 2k + 30)``) Lanczos steps from a random start, re-orthogonalising each new
    vector against all previous ones twice (so Ritz values do not duplicate), then takes the top ``k`` Ritz pairs of
    the tridiagonal matrix. Returns ``(eigenvalues (k,), eigenvectors (n, k))``, eigenvalues in decreasing order.
    """
    m = min(n, iterations if iterations is not None else 2 * k + 30)
    if not 1 <= k <= m:
        raise ValueError(f"need 1 <= k <= iterations <= n, got k={k}, iterations={m}, n={n}")
    dtype = dtype or (jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    q = jax.random.normal(key, (n,), dtype)
    basis = jnp.zeros((m, n), dtype).at[0].set(q / jnp.linalg.norm(q))

    @jax.jit
    def step(basis, j):
        qj = basis[j]
        w = matvec(qj).reshape(-1)
        alpha = jnp.dot(w, qj)
        for _ in range(2):  # classical Gram–Schmidt twice against the whole basis (unfilled rows are zero)
            w = w - basis.T @ (basis @ w)
        return alpha, jnp.linalg.norm(w), w

    alphas, betas = [], []
    for j in range(m):
        alpha, beta, w = step(basis, j)
        alphas.append(alpha)
        if j + 1 == m:
            break
        if float(beta) < 1e-12 * max(1.0, abs(float(alpha))):  # invariant subspace found: stop early
            basis = basis[: j + 1]
            break
        betas.append(beta)
        basis = basis.at[j + 1].set(w / beta)
    size = len(alphas)
    tri = jnp.diag(jnp.stack(alphas))
    if size > 1:
        off = jnp.stack(betas[: size - 1])
        tri = tri + jnp.diag(off, 1) + jnp.diag(off, -1)
    ritz_values, ritz_vectors = jnp.linalg.eigh(tri)
    order = jnp.argsort(ritz_values)[::-1][:k]
    return ritz_values[order], basis[:size].T @ ritz_vectors[:, order]
