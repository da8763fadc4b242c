"""Every operator: an independent implementation of its forward model; linear ones: adjointness in float64 and a dense
matrix on a tiny input; nonlinear ones: the vector–Jacobian product against finite differences."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from dipjax import operators as ops


def _operators(key):
    """Operator variants beyond each task's defaults (those come from the registry, below)."""
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
        # float64 where the tests use it (under the x64 fixture); float32 when NAMES is built at import
        "cs": ops.CompressedSensing.gaussian(k3, shape, 0.3, dtype=jnp.result_type(float)),
    }


NAMES = list(_operators(jax.random.key(0)))


def _numpy_sr(x, f):
    """DIP's downsampler written out: replicate-pad, then the Lanczos-2 weighted sum of each window at stride f."""
    k = ops.lanczos2_kernel(f)
    pad = (k.shape[0] - f) // 2
    xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = x.shape[0] // f, x.shape[1] // f
    return np.stack([[np.einsum("hwc,hw->c", xp[i * f:i * f + k.shape[0], j * f:j * f + k.shape[1]], k)
                      for j in range(w)] for i in range(h)])


def _numpy_blur(x, kernel, boundary):
    """Convolution with scipy: circular via wrap padding, 'valid' as is."""
    k = np.asarray(kernel, np.float64)
    kh, kw = k.shape
    if boundary == "circular":
        ph, pw = kh - 1 - kh // 2, kw - 1 - kw // 2
        x = np.pad(x, ((ph, kh - 1 - ph), (pw, kw - 1 - pw), (0, 0)), mode="wrap")
    return np.stack([scipy.signal.convolve2d(x[..., c], k, mode="valid") for c in range(x.shape[-1])], -1)


def reference_forward(op, x):
    """An independent numpy implementation of each operator type's forward model. A new operator type must be added
    here: :func:`test_every_registered_task_operator_matches_its_reference` enumerates the task registry."""
    x = np.asarray(x, np.float64)
    if isinstance(op, ops.Denoising):
        return x
    if isinstance(op, ops.Inpainting):
        return x * np.asarray(op.mask, np.float64)
    if isinstance(op, ops.SuperResolution):
        return _numpy_sr(x, op.factor)
    if isinstance(op, ops.Blur):
        return _numpy_blur(x, op.kernel, op.boundary)
    if isinstance(op, ops.CompressedSensing):
        return np.asarray(op.matrix, np.float64) @ x.reshape(-1)
    if isinstance(op, ops.MultiCoilMRI):  # numpy's FFT, centred and orthonormal
        coil = np.asarray(op.maps) * (x[..., 0] + 1j * x[..., 1])[None]
        k = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
        return k * np.asarray(op.mask)
    if isinstance(op, ops.PhaseRetrieval):  # numpy's centred orthonormal FFT of the zero-padded image
        xp = np.pad(x, ((op.pad, op.pad), (op.pad, op.pad), (0, 0)))
        f = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(xp, axes=(0, 1)), axes=(0, 1), norm="ortho"), axes=(0, 1))
        return np.abs(f) if op.measure == "amplitude" else np.abs(f) ** 2
    if isinstance(op, ops.NonlinearBlur):  # the response written from its formula, after scipy's convolution
        a, u = op.response, _numpy_blur(x, op.blur.kernel, op.blur.boundary)
        return (1 - np.exp(-a * u)) / (1 - np.exp(-a))
    if isinstance(op, ops.ParallelBeamCT):
        from skimage.transform import radon

        return radon(x[..., 0], np.asarray(op.angles, np.float64), circle=op.circle)
    raise NotImplementedError(f"no reference implementation for {type(op).__name__}: add one to tests/test_operators.py")


def _registry_operators():
    """One operator per registered task (default options, 16x16 images with the task's channels, else 2)."""
    from dipjax.tasks import TASKS

    return {name: cls().build_operator(jax.random.key(4), (16, 16, cls.operator_channels or 2))
            for name, cls in TASKS.items()}


def _dense(forward, in_shape):
    n = math.prod(in_shape)
    basis = np.eye(n).reshape((n,) + tuple(in_shape))
    return np.stack([np.asarray(forward(b)).reshape(-1) for b in basis], axis=1)  # (m, n)


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
    """The operator's forward, adjoint and normal maps against the dense matrix of an independent numpy
    implementation of the same forward model (its transpose is the adjoint's reference)."""
    op = _operators(jax.random.key(0))[name]
    a = _dense(lambda b: reference_forward(op, b), op.in_shape)
    kx, ky = jax.random.split(jax.random.key(2))
    x = jax.random.normal(kx, op.in_shape, jnp.float64)
    y = jax.random.normal(ky, op.out_shape, jnp.float64)
    np.testing.assert_allclose(np.asarray(op(x)).reshape(-1), a @ np.asarray(x).reshape(-1), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(np.asarray(op.adjoint(y)).reshape(-1), a.T @ np.asarray(y).reshape(-1), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(np.asarray(op.normal(x)).reshape(-1), a.T @ a @ np.asarray(x).reshape(-1),
                               rtol=1e-10, atol=1e-10)


def test_every_registered_task_operator_matches_its_reference(x64):
    """Every task of the registry: its operator's forward model against the independent reference above, the adjoint
    identity (linear) or the vector–Jacobian product against finite differences (nonlinear), in float64; out_shape
    and init_image have the declared shapes; jit and vmap work."""
    from dipjax.tasks import TASKS

    ops_by_task = _registry_operators()
    assert set(ops_by_task) == set(TASKS)
    for name, op in ops_by_task.items():
        kx, ky, ki = jax.random.split(jax.random.key(3), 3)
        x = jax.random.normal(kx, op.in_shape, jnp.float64)
        y = jax.random.normal(ky, op.out_shape, jnp.float64)
        if jnp.iscomplexobj(op(x)):  # complex measurements (MRI k-space)
            y = y + 1j * jax.random.normal(ki, op.out_shape, jnp.float64)
        np.testing.assert_allclose(np.asarray(op(x)), np.asarray(reference_forward(op, x)).reshape(op.out_shape),
                                   rtol=1e-10, atol=1e-12, err_msg=name)
        if op.linear:
            lhs, rhs = jnp.real(jnp.vdot(op(x), y)), jnp.vdot(x, op.adjoint(y))
            assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs)), name
        else:  # no adjoint; the vector–Jacobian product against central differences along a random direction
            assert not hasattr(op, "adjoint"), name
            d, eps = jax.random.normal(ki, op.in_shape, jnp.float64), 1e-6
            directional = jnp.vdot(op(x + eps * d) - op(x - eps * d), y) / (2 * eps)
            assert abs(jnp.vdot(d, op.vjp(x, y)) - directional) <= 1e-6 * abs(directional), name
        assert op.init_image(y).shape == tuple(op.in_shape), name
        assert op.display(y).shape == op.view(x).shape == tuple(op.in_shape[:2]) + (
            1 if op.complex_image else op.in_shape[-1],), name
        np.testing.assert_allclose(jax.jit(lambda o, v: o(v))(op, x), op(x), rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(jax.jit(lambda o, v, w: o.vjp(v, w))(op, x, y), op.vjp(x, y), rtol=1e-10,
                                   atol=1e-12, err_msg=name)
        batch = jax.vmap(lambda v: op(v))(jnp.stack([x, 2 * x]))
        np.testing.assert_allclose(batch[1], op(2 * x), rtol=1e-12, err_msg=name)
        grads = jax.vmap(op.vjp)(jnp.stack([x, 2 * x]), jnp.stack([y, y]))
        np.testing.assert_allclose(grads[1], op.vjp(2 * x, y), rtol=1e-10, atol=1e-12, err_msg=name)
        h, w, c = op.in_shape
        for wrong in ((2 * h, 2 * w, c), (h, w, c + 1), (h, w)):  # never plausible-looking measurements
            with pytest.raises(ValueError, match="takes images of shape"):
                op(jnp.zeros(wrong))


def test_init_image_keeps_intensities():
    """"The degraded image" of each task is a picture of the right brightness: for ×4 super-resolution of a 64²
    image the bicubic upsampling has the image's mean (Aᵀy is about 1/16 of it); masked and blurred images are
    the measurements themselves."""
    from dipjax.data import load_image

    x = jnp.asarray(load_image("astronaut", 64, 3))
    sr = ops.SuperResolution(in_shape=x.shape, factor=4)
    y = sr(x)
    assert abs(float(sr.init_image(y).mean()) - float(x.mean())) < 0.02
    assert float(sr.adjoint(y).mean()) < 0.2 * float(x.mean())  # why the adjoint is not the degraded image
    const = jnp.full((32, 32, 1), 0.3)
    np.testing.assert_allclose(sr.init_image(ops.SuperResolution(in_shape=(32, 32, 1), factor=4)(const)), 0.3,
                               atol=1e-5)
    blur = ops.Blur(kernel=ops.gaussian_kernel(5, 1.0), in_shape=x.shape, boundary="valid")
    b = blur.init_image(blur(x))
    assert b.shape == x.shape and abs(float(b.mean()) - float(x.mean())) < 0.02
    inp = ops.Inpainting.from_mask(ops.random_mask(jax.random.key(0), 64, 64, 0.5), 3)
    np.testing.assert_array_equal(inp.init_image(inp(x)), inp(x))
    den = ops.Denoising(in_shape=x.shape)
    np.testing.assert_array_equal(den.display(x + 0.5), jnp.clip(x + 0.5, 0, 1))


def test_complex_image_convention():
    z = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5)) + 1j * np.random.default_rng(1).normal(size=(4, 5)))
    x = ops.from_complex(z)
    assert x.shape == (4, 5, 2)
    np.testing.assert_allclose(ops.to_complex(x), z, rtol=1e-6)
    with pytest.raises(ValueError, match="real/imaginary"):
        ops.to_complex(jnp.zeros((4, 5, 3)))


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
    x = np.random.default_rng(0).random((12, 12, 3))
    out = ops.SuperResolution(in_shape=x.shape, factor=2)(jnp.asarray(x))
    np.testing.assert_allclose(out, _numpy_sr(x, 2), rtol=1e-12, atol=1e-12)
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
    from dipjax.tasks import OptionError, task_config

    x = jnp.full((100, 100, 3), 0.5).at[..., 1].set(0.4)
    y = task_config("denoise", sigma=10.0, noise_channels="shared").simulate(jax.random.key(0), x).y
    r = np.asarray(y - x)
    assert np.allclose(r[..., 0], r[..., 1], atol=1e-6) and np.allclose(r[..., 0], r[..., 2], atol=1e-6)
    assert abs(r[..., 0].std() - 10 / 255) < 0.002
    y_ind = task_config("denoise", sigma=10.0).simulate(jax.random.key(0), x).y
    assert abs(np.corrcoef(np.asarray(y_ind - x)[..., 0].ravel(), np.asarray(y_ind - x)[..., 2].ravel())[0, 1]) < 0.05
    with pytest.raises(OptionError, match="noise_channels"):
        task_config("denoise", noise_channels="per-pixel")


def test_operators_vmap_over_batched_leaves():
    masks = jnp.stack([ops.random_mask(jax.random.key(i), 8, 8, 0.5) for i in range(3)])
    batched = ops.Inpainting(mask=masks, in_shape=(8, 8, 1))
    x = jnp.ones((3, 8, 8, 1))
    out = jax.vmap(lambda op, xi: op(xi))(batched, x)
    np.testing.assert_array_equal(out, masks)


def test_psnr_up_to_phase_retrieval_ambiguities():
    """An image with a dark frame, translated inside the padded frame, flipped by 180° and negated, is the same
    phase-retrieval solution: aligned PSNR is infinite; an aligned estimate scores its plain PSNR; the operator's
    measurements are indeed unchanged by these moves."""
    from dipjax.metrics import psnr, psnr_up_to_ambiguity

    rng = np.random.default_rng(0)
    x = np.zeros((24, 24, 2), np.float32)
    x[5:17, 7:19] = rng.random((12, 12, 2))
    moved = -np.roll(x[::-1, ::-1], (3, -4), axis=(0, 1))
    op = ops.PhaseRetrieval.oversampled(x.shape, 2.0)
    np.testing.assert_allclose(op(jnp.asarray(moved)), op(jnp.asarray(x)), rtol=1e-4, atol=1e-5)
    assert float(psnr_up_to_ambiguity(moved, x, op.pad)) == np.inf
    noisy = x + 0.05 * rng.standard_normal(x.shape).astype(np.float32)
    assert float(psnr_up_to_ambiguity(noisy, x, op.pad)) == pytest.approx(float(psnr(noisy, x)), rel=1e-5)
    assert float(psnr(moved, x)) < 10  # plain PSNR is meaningless here
    # one channel flipped on its own is still a solution (each channel is measured separately)
    half = np.concatenate([x[..., :1], x[::-1, ::-1, 1:]], axis=-1)
    assert float(psnr_up_to_ambiguity(half, x, op.pad)) > 100
