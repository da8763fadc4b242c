"""Empirical NTK: dense (both modes), matrix-free, finite differences and Lanczos agree, on dipjax networks
(batch-normalised ones included), in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dipjax.networks import deep_decoder, skip_net
from dipjax.theory.conv_as_matmul import convolutions_as_matmuls
from dipjax.theory import empirical_ntk, finite_difference_ntk, lanczos_top_eigenpairs, module_apply, ntk_matvec


def _rel(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def _tiny(network, shape):
    z = jax.random.uniform(jax.random.PRNGKey(0), shape, jnp.float64) * 0.1
    params = network.init(jax.random.PRNGKey(1), z)["params"]
    params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
    return module_apply(network), params, z


NETWORKS = {
    # skip net: batch norm, reflection padding, skip connections; 8x8 output, 1 channel
    "skip": (lambda: skip_net(out_channels=1, width=2, scales=2, skip_channels=1, in_channels=2), (8, 8, 2)),
    # deep decoder: upsampling + per-image batch norm
    "deep_decoder": (lambda: deep_decoder(out_channels=1, k=3, layers=2), None),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_dense_matrix_free_and_finite_differences_agree(x64, name):
    make, shape = NETWORKS[name]
    network = make()
    shape = shape or network.input_shape(8, 8)
    apply, params, z = _tiny(network, shape)
    dense = empirical_ntk(apply, params, z)  # Jacobian rows with convolutions as matmuls, then GEMMs
    forward = empirical_ntk(apply, params, z, mode="forward", chunk_size=50)
    n = dense.shape[0]
    assert dense.shape == (n, n) and n == 64
    assert _rel(forward, dense) < 1e-10
    if name == "deep_decoder":  # the column form J (Jᵀ E), the skip net's compile spared
        assert _rel(empirical_ntk(apply, params, z, mode="reverse", chunk_size=7), dense) < 1e-10
    matvec = ntk_matvec(apply, params, z)
    v = jax.random.normal(jax.random.PRNGKey(2), (n, 3), jnp.float64)
    mf = jnp.stack([matvec(v[:, i]) for i in range(3)], axis=1)
    assert _rel(mf, dense @ v) < 1e-5
    fd = finite_difference_ntk(apply, params, z, eps=1e-6)
    assert _rel(fd, dense) < 1e-5
    assert np.allclose(dense, dense.T, atol=1e-10 * float(jnp.max(jnp.abs(dense))))
    assert float(jnp.linalg.eigvalsh(dense)[0]) > -1e-8 * float(jnp.max(jnp.abs(dense)))


def test_a_jacobian_larger_than_the_memory_budget_is_taken_in_groups_and_row_blocks(x64):
    """A 1-D circular CNN (leaves 192, 16, 768, 16, 48, 1): at 700 · n · 8 bytes the 768-weight leaf alone exceeds
    the budget (row blocks of 14, three blocks, six pairs) and the others form groups; the column form decides."""
    from dipjax.theory import stax
    init_fn, apply_fn, _ = stax.serial(stax.Conv(16, (3,), padding="CIRCULAR", b_std=0.1), stax.Relu(),
                                       stax.Conv(16, (3,), padding="CIRCULAR", b_std=0.1), stax.Relu(),
                                       stax.Conv(1, (3,), padding="CIRCULAR", b_std=0.1))
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 4), jnp.float64)
    params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), init_fn(jax.random.PRNGKey(1), z.shape)[1])
    apply = lambda p, x: apply_fn(p, x)[..., 0]  # noqa: E731
    budget = 700 * 32 * 8
    columns = empirical_ntk(apply, params, z, mode="reverse", chunk_size=8)
    assert _rel(empirical_ntk(apply, params, z, mode="gram", max_jacobian_bytes=budget), columns) < 1e-12
    assert _rel(empirical_ntk(apply, params, z), columns) < 1e-12
    # a budget of three parameter vectors: "auto" takes columns, three at a time (32 outputs: a padded last block)
    assert _rel(empirical_ntk(apply, params, z, max_jacobian_bytes=3 * 1041 * 8), columns) < 1e-12


def test_lanczos_finds_the_top_eigenpairs(x64):
    network = skip_net(out_channels=1, width=2, scales=2, skip_channels=1, in_channels=2)
    apply, params, z = _tiny(network, (8, 8, 2))
    dense = empirical_ntk(apply, params, z)
    evals, evecs = jnp.linalg.eigh(dense)
    vals, vecs = lanczos_top_eigenpairs(ntk_matvec(apply, params, z), 64, 5, jax.random.PRNGKey(3), iterations=40)
    np.testing.assert_allclose(vals, evals[::-1][:5], rtol=1e-8)
    overlap = jnp.abs(jnp.sum(vecs * evecs[:, ::-1][:, :5], axis=0))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-6)


def test_bad_arguments_are_refused():
    apply = lambda p, z: p * z  # noqa: E731
    with pytest.raises(ValueError, match="mode"):
        empirical_ntk(apply, jnp.ones(3), jnp.ones(3), mode="sideways")
    with pytest.raises(ValueError, match="max_jacobian_bytes"):
        empirical_ntk(apply, jnp.ones(3), jnp.ones(3), max_jacobian_bytes=0)


CONVOLUTIONS = [  # (dimension numbers, input shape, filter shape, strides, padding, filter dilation)
    (("NCHW", "OIHW", "NCHW"), (2, 3, 9, 7), (5, 3, 3, 2), (2, 2), [(1, 2), (0, 1)], (2, 1)),
    (("NHWC", "HWIO", "NCHW"), (1, 8, 8, 2), (3, 3, 2, 4), (2, 1), "VALID", (1, 1)),
    (("NHC", "HIO", "NHC"), (2, 11, 3), (3, 3, 4), (1,), [(-1, 1)], (1,)),
]


@pytest.mark.parametrize("case", range(len(CONVOLUTIONS)))
def test_convolutions_as_matmuls_match_lax_values_and_derivatives(x64, case):
    dims, x_shape, w_shape, strides, padding, dilation = CONVOLUTIONS[case]
    kx, kw, kc = jax.random.split(jax.random.PRNGKey(case), 3)
    x, w = jax.random.normal(kx, x_shape), jax.random.normal(kw, w_shape)

    def conv(x, w):
        return jnp.tanh(jax.lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=dilation,
                                                     dimension_numbers=dims))

    rewritten = jax.jit(convolutions_as_matmuls(conv))
    out = conv(x, w)
    assert _rel(rewritten(x, w), out) < 1e-13
    cotangent = jax.random.normal(kc, out.shape)
    reference = jax.vjp(conv, x, w)[1](cotangent)
    for got, want in zip(jax.vjp(rewritten, x, w)[1](cotangent), reference):
        assert _rel(got, want) < 1e-13
    grouped = lambda x, w: jax.lax.conv_general_dilated(  # noqa: E731  (groups: left to lax)
        x, w, strides, padding, dimension_numbers=dims, feature_group_count=x_shape[dims[0].index("C")])
    if dims[0] == "NHWC":
        depthwise = jax.random.normal(kw, w_shape[:2] + (1, x_shape[-1]))
        assert _rel(convolutions_as_matmuls(grouped)(x, depthwise), grouped(x, depthwise)) == 0.0
    with pytest.raises(ValueError, match="k"):
        lanczos_top_eigenpairs(lambda v: v, 5, 9, jax.random.PRNGKey(0))
