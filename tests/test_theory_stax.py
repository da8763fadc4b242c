"""Infinite-width kernels of dipjax.theory.stax against an independent implementation (tests/kernel_reference.py),
their axis layout, and the finite network built from the same layer list."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dipjax.theory import empirical_ntk, stax
from kernel_reference import Ref


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


def _check(kernel_fn, ref: Ref, x):
    k = kernel_fn(x, None)
    assert _rel(k.nngp, ref.natural("nngp")) < 1e-6
    assert _rel(k.ntk, ref.natural("ntk")) < 1e-6


def test_fully_connected_relu_matches_reference(x64):
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 5), jnp.float64)
    _, _, kernel_fn = stax.serial(stax.Dense(64, W_std=1.5, b_std=0.1), stax.Relu(),
                                  stax.Dense(64, W_std=1.5, b_std=0.1), stax.Relu(),
                                  stax.Dense(1, W_std=1.5, b_std=0.1))
    ref = Ref(x)
    for last in (False, False, True):
        ref.dense(1.5, 0.1)
        if not last:
            ref.nonlinearity("abrelu")
    _check(kernel_fn, ref, x)


@pytest.mark.parametrize("padding", ["SAME", "CIRCULAR", "VALID"])
def test_1d_cnn_matches_reference(x64, padding):
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 9, 3), jnp.float64)
    _, _, kernel_fn = stax.serial(stax.Conv(8, (3,), padding=padding, W_std=1.3, b_std=0.2), stax.Relu(),
                                  stax.Conv(8, (5,), padding=padding, W_std=1.3, b_std=0.2), stax.LeakyRelu(0.2),
                                  stax.Conv(1, (3,), padding=padding, W_std=1.3, b_std=0.2))
    ref = Ref(x)
    ref.conv((3,), padding, 1.3, 0.2)
    ref.nonlinearity("abrelu")
    ref.conv((5,), padding, 1.3, 0.2)
    ref.nonlinearity("abrelu", a=0.2)
    ref.conv((3,), padding, 1.3, 0.2)
    _check(kernel_fn, ref, x)


def test_2d_cnn_with_erf_residual_and_pooling_matches_reference(x64):
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 4, 3, 2), jnp.float64)  # H != W to pin the layout
    block = stax.serial(stax.Conv(8, (3, 3), padding="SAME", W_std=1.2, b_std=0.1), stax.Erf(),
                        stax.Conv(8, (3, 3), padding="SAME", W_std=1.2, b_std=0.1))
    _, _, kernel_fn = stax.serial(stax.Conv(8, (3, 1), padding="CIRCULAR", W_std=1.4), stax.Relu(),
                                  stax.FanOut(2), stax.parallel(block, stax.Identity()), stax.FanInSum())
    ref = Ref(x)
    ref.conv((3, 1), "CIRCULAR", 1.4, None)
    ref.nonlinearity("abrelu")
    branch = Ref(x)
    branch.n, branch.spatial = ref.n, ref.spatial
    branch.nngp, branch.ntk = ref.nngp.copy(), ref.ntk.copy()
    branch.conv((3, 3), "SAME", 1.2, 0.1)
    branch.nonlinearity("erf")
    branch.conv((3, 3), "SAME", 1.2, 0.1)
    ref.nngp, ref.ntk = ref.nngp + branch.nngp, ref.ntk + branch.ntk
    k = kernel_fn(x, None)
    assert k.ntk.shape == (2, 2, 4, 4, 3, 3)
    _check(kernel_fn, ref, x)

    for layer, reduce in ((stax.GlobalAvgPool(), Ref.global_avg_pool), (stax.Flatten(), Ref.flatten)):
        _, _, head = stax.serial(stax.Conv(8, (3, 1), padding="CIRCULAR", W_std=1.4), stax.Relu(), layer,
                                 stax.Dense(1, W_std=1.1, b_std=0.3))
        ref = Ref(x)
        ref.conv((3, 1), "CIRCULAR", 1.4, None)
        ref.nonlinearity("abrelu")
        reduce(ref)
        ref.dense(1.1, 0.3)
        assert head(x, None, "ntk").shape == (2, 2)
        _check(head, ref, x)


def test_cross_kernel_is_the_block_of_the_joint_kernel_and_axes_are_natural(x64):
    """kernel_fn(x1, x2) equals the (x1, x2) block of kernel_fn([x1; x2]); a circular shift of x2 along W shifts
    the kernel along the W2 axis only."""
    key1, key2 = jax.random.split(jax.random.PRNGKey(3))
    x1 = jax.random.normal(key1, (1, 5, 4, 2), jnp.float64)
    x2 = jax.random.normal(key2, (2, 5, 4, 2), jnp.float64)
    _, _, kernel_fn = stax.serial(stax.Conv(4, (3, 3), padding="CIRCULAR", W_std=1.4, b_std=0.1), stax.Relu(),
                                  stax.Conv(1, (3, 3), padding="CIRCULAR", W_std=1.4))
    cross = kernel_fn(x1, x2)
    joint = kernel_fn(jnp.concatenate([x1, x2]), None)
    np.testing.assert_allclose(cross.ntk, joint.ntk[:1, 1:], rtol=1e-12)
    shifted = kernel_fn(x1, jnp.roll(x2, 1, axis=2), "ntk")
    np.testing.assert_allclose(shifted, jnp.roll(cross.ntk, 1, axis=5), rtol=1e-10, atol=1e-12)
    assert not np.allclose(shifted, jnp.roll(cross.ntk, 1, axis=4))


def test_empirical_ntk_of_the_finite_network_approaches_the_analytic_one(x64):
    """Relative Frobenius error falls roughly like 1/sqrt(width): 16x the width, about 4x less error."""
    x = jax.random.normal(jax.random.PRNGKey(4), (1, 8, 2), jnp.float64)

    def error(width, seed):
        init_fn, apply_fn, kernel_fn = stax.serial(
            stax.Conv(width, (3,), padding="CIRCULAR", W_std=1.4, b_std=0.1), stax.Relu(),
            stax.Conv(width, (3,), padding="CIRCULAR", W_std=1.4, b_std=0.1), stax.Relu(),
            stax.Conv(1, (3,), padding="CIRCULAR", W_std=1.4, b_std=0.1))
        _, params = init_fn(jax.random.PRNGKey(seed), x.shape)
        params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), params)
        emp = empirical_ntk(lambda p, z: apply_fn(p, z)[0, :, 0], params, x)
        ana = kernel_fn(x, None, "ntk")[0, 0]
        return float(jnp.linalg.norm(emp - ana) / jnp.linalg.norm(ana))

    narrow = np.mean([error(32, s) for s in range(3)])
    wide = np.mean([error(512, s) for s in range(3)])
    assert wide < 0.1
    assert 2.0 < narrow / wide < 8.0  # 1/sqrt(width) predicts 4


def test_finite_network_trains_in_the_dipjax_engine():
    from dipjax.engine import reconstruct
    from dipjax.methods import DIP
    from dipjax.operators import Denoising, gaussian_noise
    from dipjax.problem import make_problem

    layers = stax.serial(stax.Conv(16, (3, 3), padding="SAME", W_std=1.4, b_std=0.1), stax.Relu(),
                         stax.Conv(1, (3, 3), padding="SAME", W_std=1.4, b_std=0.1))
    net = stax.as_network(layers, in_channels=4)
    x = jnp.tile(jnp.linspace(0.2, 0.8, 16)[None, :, None], (16, 1, 1))
    prob = make_problem(jax.random.key(0), Denoising(in_shape=(16, 16, 1)), x,
                        lambda k, y: gaussian_noise(k, y, 0.1, (0, 1)))
    result = reconstruct(DIP(network=net, lr=0.01), prob, jax.random.key(1), 30, progress=False)
    loss = np.asarray(result.history["loss"])
    assert result.x_final.shape == (16, 16, 1)
    assert loss[-1] < 0.5 * loss[0]


def test_bad_layer_configurations_are_refused():
    with pytest.raises(ValueError, match="odd"):
        stax.Conv(4, (2,), padding="SAME")
    with pytest.raises(ValueError, match="padding"):
        stax.Conv(4, (3,), padding="REFLECT")
    _, _, kernel_fn = stax.serial(stax.Conv(4, (3, 3), padding="SAME"))
    with pytest.raises(ValueError, match="spatial"):
        kernel_fn(jnp.ones((1, 5, 2)), None)
