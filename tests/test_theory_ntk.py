"""Empirical NTK: dense (both modes), matrix-free, finite differences and Lanczos agree, on dipjax networks
(batch-normalised ones included), in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dipjax.networks import deep_decoder, skip_net
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
    reverse = empirical_ntk(apply, params, z, mode="reverse", chunk_size=7)
    forward = empirical_ntk(apply, params, z, mode="forward", chunk_size=50)
    n = reverse.shape[0]
    assert reverse.shape == (n, n) and n == 64
    assert _rel(forward, reverse) < 1e-10
    matvec = ntk_matvec(apply, params, z)
    v = jax.random.normal(jax.random.PRNGKey(2), (n, 3), jnp.float64)
    mf = jnp.stack([matvec(v[:, i]) for i in range(3)], axis=1)
    assert _rel(mf, reverse @ v) < 1e-5
    fd = finite_difference_ntk(apply, params, z, eps=1e-6)
    assert _rel(fd, reverse) < 1e-5
    assert np.allclose(reverse, reverse.T, atol=1e-10 * float(jnp.max(jnp.abs(reverse))))
    assert float(jnp.linalg.eigvalsh(reverse)[0]) > -1e-8 * float(jnp.max(jnp.abs(reverse)))


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
    with pytest.raises(ValueError, match="k"):
        lanczos_top_eigenpairs(lambda v: v, 5, 9, jax.random.PRNGKey(0))
