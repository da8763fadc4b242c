"""Empirical neural tangent kernel of any network ``apply(params, z)``: dense, matrix-free and its top spectrum.

The empirical NTK at parameters θ is ``K = J Jᵀ`` with ``J = ∂ vec f_θ(z) / ∂θ`` (n outputs × P parameters); it is the
kernel of the linearised DIP dynamics, survey eq. (6). Outputs are flattened in C order (for an image ``(H, W, C)``,
pixel-major with the channel fastest), so ``K[i, j]`` pairs ``f.ravel()[i]`` with ``f.ravel()[j]``.

Three ways to get it, cross-checked in ``tests/test_theory_ntk.py``:

* :func:`empirical_ntk` — the dense ``n × n`` matrix. With more parameters than outputs (every DIP network) it forms
  the Jacobian rows by reverse mode, with convolutions rewritten as patch matrix products
  (:mod:`~dipjax.theory.conv_as_matmul`), and contracts them leaf by leaf as ``Σ_l J_l J_lᵀ`` with GEMMs, within a
  memory budget; the column form ``J (Jᵀ E)`` and forward-mode Jacobian columns remain as modes.
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

from dipjax.theory.conv_as_matmul import convolutions_as_matmuls

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
    theta0, unravel = ravel_pytree(params)

    @jax.jit
    def product(theta, z, v):
        f = lambda t: apply(unravel(t), z).reshape(-1)  # noqa: E731
        (jt_v,) = jax.vjp(f, theta)[1](v.reshape(-1))
        return jax.jvp(f, (theta,), (jt_v,))[1].reshape(v.shape)

    return lambda v: product(theta0, z, v)


def _jacobian_rows(apply: Apply, n: int, rows: int, leaves: tuple[int, ...]):
    """Jitted ``(params, z, start) ↦`` the Jacobian rows ``start … start+rows-1`` of the chosen parameter leaves,
    each ``(rows, leaf size)``; rows past ``n`` are zero. Parameters and inputs are arguments, not constants."""
    model = convolutions_as_matmuls(apply)

    @jax.jit
    def jacobian_rows(params, z, start):
        out, vjp = jax.vjp(lambda p: model(p, z).reshape(-1), params)
        basis = jax.nn.one_hot(start + jnp.arange(rows), n, dtype=out.dtype)
        grads = jax.tree_util.tree_leaves(jax.vmap(vjp)(basis)[0])
        return [grads[i].reshape(rows, -1) for i in leaves]

    return jacobian_rows


def _gram_plan(params, n: int, budget: int) -> list[tuple[tuple[int, ...], int]]:
    """``[(leaf indices, rows per block)]``: leaves grouped so that each group's ``n`` Jacobian rows fit ``budget``
    bytes; a group (then a single leaf) too large for that is taken in row blocks of half the budget each."""
    leaves = jax.tree_util.tree_leaves(params)
    itemsize = jnp.dtype(jnp.result_type(*leaves)).itemsize
    groups, current, size = [], [], 0
    for i, leaf in enumerate(leaves):
        if current and (size + leaf.size) * n * itemsize > budget:
            groups.append(current)
            current, size = [], 0
        current.append(i)
        size += leaf.size
    groups.append(current)
    plan = []
    for group in groups:
        width = sum(leaves[i].size for i in group) * itemsize
        plan.append((tuple(group), n if width * n <= budget else max(1, min(n, budget // (2 * width)))))
    return plan


def _gram(apply: Apply, params, z, n: int, plan) -> jax.Array:
    """``K = Σ_groups J_g J_gᵀ`` following :func:`_gram_plan`; row blocks contribute ``J_I J_Jᵀ`` pair by pair (the
    later block of each pair recomputed, so ``B`` blocks cost ``B(B+1)/2`` Jacobian evaluations)."""
    kernel = jnp.zeros((n, n), jnp.result_type(*jax.tree_util.tree_leaves(params)))
    for group, rows in plan:
        jacobian_rows = _jacobian_rows(apply, n, rows, group)
        starts = list(range(0, n, rows))
        for a, sa in enumerate(starts):
            ja = jacobian_rows(params, z, sa)
            for sb in starts[a:]:
                jb = ja if sb == sa else jacobian_rows(params, z, sb)
                block = sum(x @ y.T for x, y in zip(ja, jb))
                ra, rb = min(rows, n - sa), min(rows, n - sb)
                kernel = kernel.at[sa:sa + ra, sb:sb + rb].add(block[:ra, :rb])
                if sb != sa:
                    kernel = kernel.at[sb:sb + rb, sa:sa + ra].add(block[:ra, :rb].T)
    return kernel


# "auto" takes the Gram form while no parameter group needs more row blocks than this: B blocks cost n·B/2 VJP rows,
# the column form 2n (n VJPs and n JVPs).
MAX_GRAM_ROW_BLOCKS = 4


def empirical_ntk(apply: Apply, params, z, *, mode: str = "auto", chunk_size: int = 64,
                  max_jacobian_bytes: int = 2 ** 31) -> jax.Array:
    """Dense empirical NTK ``K = J Jᵀ`` (n × n, n = number of output entries).

    ``mode``:

    * ``"gram"`` — Jacobian rows by reverse mode (a ``vmap`` of the VJP over output basis vectors, with every
      convolution rewritten as patches × filter by :func:`convolutions_as_matmuls` so that the filter derivatives are
      matrix products), then ``K = Σ_l J_l J_lᵀ`` over groups of parameter leaves as GEMMs; at most
      ``max_jacobian_bytes`` of Jacobian in memory at once (a group too large for that is taken in row blocks,
      pair by pair). ``"auto"`` picks it when there are at least as many parameters as outputs and no group needs
      more than ``MAX_GRAM_ROW_BLOCKS`` row blocks.
    * ``"reverse"`` — columns ``J (Jᵀ E)`` for blocks ``E`` of ``chunk_size`` basis vectors (one reverse and one
      forward pass per column, memory ``chunk × P``): ``"auto"`` picks it when the Jacobian is far larger than the
      budget, with ``chunk_size`` lowered so that ``chunk × P`` fits the budget too (at the 3-layer CNN of width
      4096 of ``experiments/bench_ntk.py``, 64 columns of its 50 M parameters would need 26 GB in float64).
    * ``"forward"`` — Jacobian columns by forward mode over parameter blocks of ``chunk_size``, accumulating
      ``J_b J_bᵀ`` (memory ``n × chunk``): for networks with fewer parameters than outputs; ``"auto"`` picks it then.

    In every mode parameters and inputs are arguments of the compiled functions (never compile-time constants), so
    compilation does not grow with the width. ``experiments/bench_ntk.py`` times the modes.
    """
    if mode not in ("auto", "gram", "reverse", "forward"):
        raise ValueError(f"mode must be 'auto', 'gram', 'reverse' or 'forward', got {mode!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if max_jacobian_bytes < 1:
        raise ValueError(f"max_jacobian_bytes must be >= 1, got {max_jacobian_bytes}")
    theta0, unravel = ravel_pytree(params)
    n = int(np.prod(jax.eval_shape(apply, params, z).shape))
    p = theta0.size
    plan = _gram_plan(params, n, max_jacobian_bytes)
    if mode == "auto":
        blocks = max(-(-n // rows) for _, rows in plan)
        mode = "forward" if p < n else "gram" if blocks <= MAX_GRAM_ROW_BLOCKS else "reverse"
        if mode == "reverse":  # each block of columns holds chunk × P numbers: keep them within the budget too
            chunk_size = max(1, min(chunk_size, max_jacobian_bytes // (p * theta0.dtype.itemsize)))
    if mode == "gram":
        return _gram(apply, params, z, n, plan)
    dtype = theta0.dtype

    def f(theta, z):
        return apply(unravel(theta), z).reshape(-1)

    if mode == "reverse":
        @jax.jit
        def columns(theta, z, start):
            _, vjp = jax.vjp(lambda t: f(t, z), theta)
            basis = jax.nn.one_hot(start + jnp.arange(chunk_size), n, dtype=dtype)  # rows past n are all zero
            jt = jax.vmap(lambda e: vjp(e)[0])(basis)  # (chunk, P) = (Jᵀ E)ᵀ
            return jax.vmap(lambda t: jax.jvp(lambda u: f(u, z), (theta,), (t,))[1])(jt)  # (chunk, n) = (J Jᵀ E)ᵀ

        blocks = [columns(theta0, z, start) for start in range(0, n, chunk_size)]
        return jnp.concatenate(blocks, axis=0)[:n].T

    @jax.jit
    def gram_block(theta, z, start):
        basis = jax.nn.one_hot(start + jnp.arange(chunk_size), p, dtype=dtype)
        jcols = jax.vmap(lambda e: jax.jvp(lambda u: f(u, z), (theta,), (e,))[1])(basis)  # (chunk, n) = J_bᵀ
        return jcols.T @ jcols

    kernel = jnp.zeros((n, n), dtype)
    for start in range(0, p, chunk_size):
        kernel = kernel + gram_block(theta0, z, start)
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
