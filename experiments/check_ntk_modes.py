"""Do the empirical NTK's modes agree on this backend? Every mode of :func:`dipjax.theory.empirical_ntk` and a dense
``jax.jacrev`` Jacobian (``J Jᵀ`` in JAX and in numpy) on a small 1-D circular CNN in float64, pairwise.

    python experiments/check_ntk_modes.py            # prints the table of max |K_a − K_b| / max |K_b|

The network and inputs are those of ``tests/test_theory_ntk.py``'s row-block test (widths 16, 16, 1; input 4 × 8 × 4).
On CPU every pair agrees to ~1e-15. On an NVIDIA H200 (jax 0.11.2) the two modes built on forward-mode derivatives
(``reverse``: ``J (Jᵀ E)``; ``forward``: ``jvp`` over parameter blocks) differed from the others by ~4e-8, the same
with ``XLA_FLAGS=--xla_gpu_autotune_level=0`` (``experiments/results/bench_ntk_gpu/check_ntk_modes_h200*.log``,
made by this script's first draft: the same computation with shorter labels, rev, gram_budget, gram, fwd, dense,
numpy).
"""

from __future__ import annotations

import sys


def main() -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    jax.config.update("jax_enable_x64", True)  # a script of its own: nothing else shares this process
    from dipjax.theory import empirical_ntk, stax

    init_fn, apply_fn, _ = stax.serial(stax.Conv(16, (3,), padding="CIRCULAR", b_std=0.1), stax.Relu(),
                                       stax.Conv(16, (3,), padding="CIRCULAR", b_std=0.1), stax.Relu(),
                                       stax.Conv(1, (3,), padding="CIRCULAR", b_std=0.1))
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 4), jnp.float64)
    params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), init_fn(jax.random.PRNGKey(1), z.shape)[1])

    def apply(p, x):
        return apply_fn(p, x)[..., 0]

    kernels = {"reverse": empirical_ntk(apply, params, z, mode="reverse", chunk_size=8),
               "gram (row blocks)": empirical_ntk(apply, params, z, mode="gram", max_jacobian_bytes=700 * 32 * 8),
               "gram": empirical_ntk(apply, params, z, mode="gram"),
               "forward": empirical_ntk(apply, params, z, mode="forward")}
    jac = jax.jacrev(lambda p: apply(p, z).ravel())(params)
    dense = jnp.concatenate([leaf.reshape(32, -1) for leaf in jax.tree_util.tree_leaves(jac)], axis=1)
    kernels["dense jacrev (jax)"] = dense @ dense.T
    kernels["dense jacrev (numpy)"] = np.asarray(dense) @ np.asarray(dense).T
    print(f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}), jax {jax.__version__}")
    for a, ka in kernels.items():
        print(f"{a:>22}: " + "  ".join(f"{float(jnp.max(jnp.abs(ka - kb)) / jnp.max(jnp.abs(kb))):.1e}"
                                       for kb in kernels.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
