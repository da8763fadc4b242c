"""Multi-coil MRI and parallel-beam CT operators against independent implementations (numpy FFT SENSE, scikit-image's
radon/iradon), masks by fastMRI's column counts, ESPIRiT maps, and the classical baselines."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from dipjax.baselines import gradient, gradient_adjoint, least_squares_cg, tv_reconstruction
from dipjax.operators import from_complex
from dipjax.operators.ct import ParallelBeamCT, fbp, post_log_poisson, view_angles
from dipjax.operators.mri import MultiCoilMRI, birdcage_maps, cartesian_mask, espirit_maps, fft2c, rss


def _phantom(n):
    return resize(shepp_logan_phantom(), (n, n), anti_aliasing=True)


def _complex_phantom(n):
    yy, xx = np.mgrid[:n, :n] / n
    return _phantom(n) * np.exp(1j * 2 * np.pi * (0.3 * xx + 0.2 * yy**2))


def _numpy_sense(maps, mask, z):
    """SENSE forward model written with numpy's FFT: centred, orthonormal."""
    coil = maps * z[None]
    k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return k * mask


def test_multicoil_mri_adjoint_and_numpy_reference(x64):
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(4, 12, 10)) + 1j * rng.normal(size=(4, 12, 10))
    mask = cartesian_mask("random", (12, 10), 2, 0.2, 1)
    op = MultiCoilMRI(maps=jnp.asarray(maps), mask=jnp.asarray(mask, jnp.float64), in_shape=(12, 10, 2))
    x = rng.normal(size=(12, 10, 2))
    y = rng.normal(size=(4, 12, 10)) + 1j * rng.normal(size=(4, 12, 10))
    np.testing.assert_allclose(op(jnp.asarray(x)), _numpy_sense(maps, mask, x[..., 0] + 1j * x[..., 1]),
                               rtol=1e-12, atol=1e-12)
    lhs = np.real(np.vdot(np.asarray(op(jnp.asarray(x))), y))  # complex inner product, real part
    assert abs(lhs - float(jnp.vdot(x, op.adjoint(jnp.asarray(y))))) < 1e-10 * abs(lhs)
    # the closed-form adjoint equals the generic transpose-based one of the base class
    from dipjax.operators.base import LinearOperator

    np.testing.assert_allclose(LinearOperator.adjoint(op, jnp.asarray(y)), op.adjoint(jnp.asarray(y)), atol=1e-10)


def test_full_sampling_with_rss_normalised_maps_is_an_isometry(x64):
    maps = jnp.asarray(birdcage_maps((8, 24, 20)), jnp.complex128)
    np.testing.assert_allclose(rss(maps), 1.0, atol=1e-6)
    op = MultiCoilMRI(maps=maps, mask=jnp.ones((24, 20)), in_shape=(24, 20, 2))
    x = jax.random.normal(jax.random.key(0), (24, 20, 2), jnp.float64)
    np.testing.assert_allclose(op.normal(x), x, atol=1e-6)
    single = MultiCoilMRI.single_coil(jnp.ones((24, 20)))
    np.testing.assert_allclose(single.normal(x), x, atol=1e-6)
    assert op.view(x).shape == (24, 20, 1)  # metrics see the magnitude


def test_fastmri_column_counts():
    """fastMRI's 4× masks: round(W·0.08) centre columns from (W − n + 1) // 2; 93 columns at W = 368 (R = 3.96) and
    80 at W = 320. The equispaced count depends on the random offset at W = 368 (91–93, as upstream)."""
    for w, n in ((368, 29), (320, 26)):
        m = cartesian_mask("equispaced", (640, w), 4, 0.08, 0)
        pad = (w - n + 1) // 2
        assert m[:, pad:pad + n].all() and (m == m[:1]).all()
        counts = {int(cartesian_mask("equispaced", (640, w), 4, 0.08, s)[0].sum()) for s in range(30)}
        assert max(counts) == (93 if w == 368 else 80) and min(counts) >= (91 if w == 368 else 80)
    random = [cartesian_mask("random", (8, 368), 4, 0.08, s)[0].sum() for s in range(200)]
    assert abs(np.mean(random) - 92) < 1.0  # expected count W / R
    vdrs = cartesian_mask("vdrs", (8, 368), 4, 0.08, 0)[0]
    assert vdrs.sum() == 29 + 2 * 31 and vdrs[169:198].all()  # aSeqDIP: 29 centre lines + 31 per side
    with pytest.raises(ValueError, match="unknown mask kind"):
        cartesian_mask("radial", (8, 8))


@pytest.mark.parametrize("backend", ["numpy", "bart"])
def test_espirit_recovers_the_simulating_maps(backend):
    if backend == "bart" and shutil.which("bart") is None:
        pytest.skip("the optional 'bart' command is not installed")
    z = _complex_phantom(64)
    maps = birdcage_maps((8, 64, 64))
    kspace = np.array(fft2c(maps * z[None])) * cartesian_mask("equispaced", (64, 64), 2, 0.4, 0)  # undersampled, fully sampled calibration centre
    est = espirit_maps(kspace, backend=backend)
    inside = np.abs(z) > 0.05
    overlap = np.abs(np.sum(np.conj(maps) * est, axis=0))  # |<s, ŝ>|: equal up to a per-pixel phase
    print(backend, "median |<s, s_hat>| inside:", np.median(overlap[inside]))
    assert np.median(overlap[inside]) >= 0.98


@pytest.mark.parametrize("n, circle", [(33, False), (32, True)])
def test_parallel_beam_ct_matches_scikit_image(n, circle, x64):
    rng = np.random.default_rng(n)
    img = rng.random((n, n))
    if circle:
        yy, xx = np.mgrid[:n, :n] - n // 2
        img[yy**2 + xx**2 > (n // 2) ** 2] = 0
    theta = np.linspace(0, 180, 7, endpoint=False)
    op = ParallelBeamCT(angles=jnp.asarray(theta), in_shape=(n, n, 1), circle=circle)
    ref = radon(img, theta, circle=circle)
    np.testing.assert_allclose(op(jnp.asarray(img)[..., None]), ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    np.testing.assert_allclose(fbp(jnp.asarray(ref), theta, circle=circle), iradon(ref, theta, circle=circle),
                               rtol=1e-3, atol=1e-3 * np.abs(ref).max())
    y = rng.normal(size=ref.shape)
    lhs = float(jnp.vdot(op(jnp.asarray(img)[..., None]), y))
    assert abs(lhs - float(jnp.vdot(img[..., None], op.adjoint(jnp.asarray(y))))) < 1e-10 * abs(lhs)


def test_radon_dense_matrix_on_a_tiny_image(x64):
    """The operator's matrix, built from scikit-image's radon of each basis image, and its transpose."""
    n, theta = 6, np.array([0.0, 33.0, 90.0, 151.0])
    op = ParallelBeamCT(angles=jnp.asarray(theta), in_shape=(n, n, 1))
    basis = np.eye(n * n).reshape(n * n, n, n)
    a = np.stack([radon(b, theta, circle=False).ravel() for b in basis], axis=1)
    x, y = np.random.default_rng(1).normal(size=(n, n)), np.random.default_rng(2).normal(size=a.shape[0])
    np.testing.assert_allclose(np.asarray(op(jnp.asarray(x)[..., None])).ravel(), a @ x.ravel(), atol=1e-10)
    np.testing.assert_allclose(np.asarray(op.adjoint(jnp.asarray(y.reshape(op.out_shape)))).ravel(), a.T @ y,
                               atol=1e-10)


@pytest.mark.parametrize("name", ["shepp-logan", "cosine", "hamming", "hann"])
def test_fbp_filters_match_scikit_image(name):
    theta = np.linspace(0, 180, 12, endpoint=False)
    sino = radon(_phantom(40), theta, circle=False)
    ref = iradon(sino, theta, circle=False, filter_name=name)
    np.testing.assert_allclose(fbp(jnp.asarray(sino), theta, filter=name), ref, atol=1e-3 * np.abs(ref).max())


def test_fbp_of_180_views_is_above_30_db():
    img = _phantom(256).astype(np.float32)
    theta = view_angles(180)
    op = ParallelBeamCT(angles=theta, in_shape=(256, 256, 1))
    rec = np.asarray(fbp(op(jnp.asarray(img)[..., None]), theta, output_size=256))
    psnr = 10 * np.log10(1 / np.mean((rec - img) ** 2))
    print("FBP, 180 noiseless views, 256² Shepp–Logan:", psnr, "dB")
    assert psnr > 30


def test_views_and_post_log_noise():
    np.testing.assert_allclose(view_angles(18), np.arange(18) * 10)
    rand = np.asarray(view_angles(18, "random", jax.random.key(0)))
    assert len(set(rand)) == 18 and np.all(np.diff(rand) > 0) and np.all(np.isin(rand, np.arange(180)))
    line = jnp.full((4000,), 20.0)
    y = post_log_poisson(jax.random.key(0), line, photons=1e4, mu=1 / 50)
    # delta method: var(−log(N/I0)/μ) ≈ 1/(μ² I0 e^{−μ y})
    assert abs(float(y.mean()) - 20.0) < 0.3
    assert abs(float(y.var()) / (1 / ((1 / 50) ** 2 * 1e4 * np.exp(-20 / 50))) - 1) < 0.1


def test_gradient_adjoint_and_baselines_improve_on_zero_filling(x64):
    g = jax.random.normal(jax.random.key(0), (9, 7, 2, 2), jnp.float64)
    x = jax.random.normal(jax.random.key(1), (9, 7, 2), jnp.float64)
    assert abs(float(jnp.vdot(gradient(x), g) - jnp.vdot(x, gradient_adjoint(g)))) < 1e-12
    n = 64
    z = _complex_phantom(n)
    op = MultiCoilMRI(maps=jnp.asarray(birdcage_maps((8, n, n))), mask=jnp.asarray(cartesian_mask("random",
                      (n, n), 4, 0.08, 0)), in_shape=(n, n, 2))
    y = op(jnp.asarray(from_complex(z), jnp.float32))
    noise = jax.random.normal(jax.random.key(2), y.shape + (2,), jnp.float32) * 0.01 / np.sqrt(2)
    y = y + (noise[..., 0] + 1j * noise[..., 1]) * op.mask
    err = lambda v: float(np.mean((np.asarray(op.view(v))[..., 0] - np.abs(z)) ** 2))  # noqa: E731
    zero_filled, cg = err(op.init_image(y)), err(least_squares_cg(op, y, iters=30))
    tv = err(tv_reconstruction(op, y, 0.01, iters=200))
    print("MSE zero-filled, CG-SENSE, TV:", zero_filled, cg, tv)
    assert tv < cg < zero_filled
