"""Every linear operator: adjointness in float64, a dense matrix on a tiny input, and an independent implementation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from dipjax import operators as ops


def _operators(key):
    k1, k2, k3 = jax.random.split(key, 3)
    shape = (8, 8, 2)
    return {
        "denoising": ops.Denoising(in_shape=shape),
        "inpainting": ops.Inpainting.from_mask(ops.random_mask(k1, 8, 8, 0.6), 2),
        "inpainting-per-channel": ops.Inpainting.from_mask(jax.random.bernoulli(k1, 0.5, (8, 8, 2)), 2),
        "sr-x2": ops.SuperResolution(in_shape=shape, factor=2),
        "sr-x4": ops.SuperResolution(in_shape=(16, 16, 1), factor=4),
        "blur-circular": ops.Blur(kernel=ops.gaussian_kernel(3, 1.0), in_shape=shape),
        "blur-valid-even": ops.Blur(kernel=ops.random_motion_kernel(k2, 4), in_shape=shape, boundary="valid"),
        "blur-circular-even": ops.Blur(kernel=ops.random_motion_kernel(k2, 4), in_shape=shape),
        "cs": ops.CompressedSensing.gaussian(k3, shape, 0.3, dtype=jnp.float64),
    }


NAMES = ["denoising", "inpainting", "inpainting-per-channel", "sr-x2", "sr-x4", "blur-circular", "blur-valid-even",
         "blur-circular-even", "cs"]


def _dense(op):
    n = math.prod(op.in_shape)
    basis = jnp.eye(n, dtype=jnp.float64).reshape((n,) + tuple(op.in_shape))
    return jax.vmap(op)(basis).reshape(n, -1).T  # (m, n)


@pytest.mark.parametrize("name", NAMES)
def test_adjoint_identity_float64(name, x64):
    op = _operators(jax.random.key(0))[name]
    kx, ky = jax.random.split(jax.random.key(1))
    x = jax.random.normal(kx, op.in_shape, jnp.float64)
    y = jax.random.normal(ky, op.out_shape, jnp.float64)
    lhs = jnp.vdot(op(x), y)
    rhs = jnp.vdot(x, op.adjoint(y))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))


@pytest.mark.parametrize("name", NAMES)
def test_dense_matrix(name, x64):
    op = _operators(jax.random.key(0))[name]
    a = _dense(op)
    kx, ky = jax.random.split(jax.random.key(2))
    x = jax.random.normal(kx, op.in_shape, jnp.float64)
    y = jax.random.normal(ky, op.out_shape, jnp.float64)
    np.testing.assert_allclose(op(x).reshape(-1), a @ x.reshape(-1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.adjoint(y).reshape(-1), a.T @ y.reshape(-1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op.normal(x).reshape(-1), a.T @ a @ x.reshape(-1), rtol=1e-10, atol=1e-10)


def test_lanczos2_kernel_matches_sinc_form():
    # Lanczos-2 window: L(d) = sinc(d) sinc(d/2), sampled at half-integer offsets / factor (DIP phase 1/2).
    for f in (2, 4, 8):
        k = ops.lanczos2_kernel(f)
        d = (np.arange(4 * f) - (4 * f - 1) / 2) / f
        taps = np.sinc(d) * np.sinc(d / 2)
        ref = np.outer(taps, taps)
        np.testing.assert_allclose(k, ref / ref.sum(), rtol=1e-12)
        assert k.shape == (4 * f, 4 * f)


def test_super_resolution_matches_numpy_loop(x64):
    f = 2
    x = np.random.default_rng(0).random((12, 12, 3))
    k = ops.lanczos2_kernel(f)
    pad = (k.shape[0] - f) // 2
    xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    ref = np.zeros((6, 6, 3))
    for i in range(6):
        for j in range(6):
            window = xp[i * f : i * f + k.shape[0], j * f : j * f + k.shape[1]]
            ref[i, j] = np.einsum("hwc,hw->c", window, k)
    out = ops.SuperResolution(in_shape=x.shape, factor=f)(jnp.asarray(x))
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    # A constant image stays constant (the kernel sums to one and the padding replicates).
    const = ops.SuperResolution(in_shape=(16, 16, 1), factor=4)(jnp.full((16, 16, 1), 0.3))
    np.testing.assert_allclose(const, 0.3, rtol=1e-12)


@pytest.mark.parametrize("ksize", [3, 4, 5])
def test_circular_blur_matches_fft(ksize, x64):
    rng = np.random.default_rng(ksize)
    x = rng.random((10, 12, 2))
    k = rng.random((ksize, ksize))
    # numpy FFT reference: embed the kernel with its centre (ksize // 2) at the origin.
    kpad = np.zeros((10, 12))
    kpad[:ksize, :ksize] = k
    kpad = np.roll(kpad, (-(ksize // 2), -(ksize // 2)), axis=(0, 1))
    ref = np.real(np.fft.ifft2(np.fft.fft2(x, axes=(0, 1)) * np.fft.fft2(kpad)[..., None], axes=(0, 1)))
    out = ops.Blur(kernel=jnp.asarray(k), in_shape=x.shape)(jnp.asarray(x))
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)


def test_valid_blur_matches_scipy(x64):
    rng = np.random.default_rng(1)
    x = rng.random((11, 9, 1))
    k = rng.random((4, 3))
    ref = scipy.signal.convolve2d(x[..., 0], k, mode="valid")
    out = ops.Blur(kernel=jnp.asarray(k), in_shape=x.shape, boundary="valid")(jnp.asarray(x))
    np.testing.assert_allclose(out[..., 0], ref, rtol=1e-12, atol=1e-12)


def test_kernels_are_normalised_psfs():
    for k in (ops.gaussian_kernel(25, 1.6), ops.uniform_kernel(9), ops.motion_kernel(15, 9, 30.0),
              ops.random_motion_kernel(jax.random.key(3), 21)):
        assert float(jnp.min(k)) >= 0
        np.testing.assert_allclose(float(jnp.sum(k)), 1.0, rtol=1e-5)
    horizontal = np.asarray(ops.motion_kernel(9, 7, 0.0))
    assert np.count_nonzero(horizontal.sum(axis=1) > 1e-6) == 1  # a horizontal line occupies one row
    g = np.asarray(ops.gaussian_kernel(7, 1.0))
    np.testing.assert_allclose(g, g.T)
    np.testing.assert_allclose(g, g[::-1, ::-1])


def test_masks():
    m = ops.random_mask(jax.random.key(0), 128, 128, 0.3)
    assert abs(float(m.mean()) - 0.3) < 0.02 and set(np.unique(m)) <= {0.0, 1.0}
    b = ops.box_mask(64, 64, 20)
    assert int((b == 0).sum()) == 400
    t = ops.text_mask(64, 64)
    assert t.shape == (64, 64, 1) and 0.02 < float(1 - t.mean()) < 0.6
    with pytest.raises(ValueError):
        ops.random_mask(jax.random.key(0), 8, 8, 0.0)
    with pytest.raises(ValueError, match="divide"):
        ops.SuperResolution(in_shape=(10, 10, 1), factor=4)


def test_cs_gaussian_scaling():
    op = ops.CompressedSensing.gaussian(jax.random.key(0), (16, 16, 1), 0.5)
    assert op.matrix.shape == (128, 256)
    # Entries N(0, 1/m): columns have unit expected squared norm.
    col_norms = jnp.sum(op.matrix**2, axis=0)
    assert abs(float(col_norms.mean()) - 1.0) < 0.05
    with pytest.raises(ValueError, match="too large"):
        ops.CompressedSensing.gaussian(jax.random.key(0), (256, 256, 3), 1.0)


def test_noise_models():
    y = jnp.full((200, 200, 1), 0.5)
    n = ops.gaussian_noise(jax.random.key(0), y, 0.1)
    assert abs(float(jnp.std(n - y)) - 0.1) < 0.002 and abs(float(jnp.mean(n - y))) < 0.002
    c = ops.gaussian_noise(jax.random.key(0), y.astype(jnp.complex64), 0.1)
    assert abs(float(jnp.mean(jnp.abs(c - y) ** 2)) - 0.01) < 0.0005  # total complex variance σ²
    p = ops.poisson_noise(jax.random.key(1), y, peak=20.0)
    assert abs(float(p.mean()) - 0.5) < 0.01 and abs(float(p.var()) - 0.5 / 20) < 0.002
    s = ops.salt_and_pepper(jax.random.key(2), y, 0.3)
    hit = s != 0.5
    assert abs(float(hit.mean()) - 0.3) < 0.01
    assert abs(float((s == 1.0).sum() / hit.sum()) - 0.5) < 0.02
    with pytest.raises(ValueError):
        ops.gaussian_noise(jax.random.key(0), y, -1.0)


def test_noise_shared_across_channels_is_one_draw_per_pixel():
    from dipjax.tasks import TaskConfig, simulate

    x = jnp.full((100, 100, 3), 0.5).at[..., 1].set(0.4)
    y = simulate(TaskConfig(sigma=10.0, noise_channels="shared"), jax.random.key(0), x).y
    r = np.asarray(y - x)
    assert np.allclose(r[..., 0], r[..., 1], atol=1e-6) and np.allclose(r[..., 0], r[..., 2], atol=1e-6)
    assert abs(r[..., 0].std() - 10 / 255) < 0.002
    y_ind = simulate(TaskConfig(sigma=10.0), jax.random.key(0), x).y
    assert abs(np.corrcoef(np.asarray(y_ind - x)[..., 0].ravel(), np.asarray(y_ind - x)[..., 2].ravel())[0, 1]) < 0.05
    with pytest.raises(ValueError, match="noise_channels"):
        TaskConfig(noise_channels="per-pixel")


def test_operators_vmap_over_batched_leaves():
    masks = jnp.stack([ops.random_mask(jax.random.key(i), 8, 8, 0.5) for i in range(3)])
    batched = ops.Inpainting(mask=masks, in_shape=(8, 8, 1))
    x = jnp.ones((3, 8, 8, 1))
    out = jax.vmap(lambda op, xi: op(xi))(batched, x)
    np.testing.assert_array_equal(out, masks)
