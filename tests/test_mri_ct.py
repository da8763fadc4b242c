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


def test_data_consistent_update_against_numpy_and_as_a_landweber_step(x64):
    """aSeqDIP's MRI input update ``Sᴴ F⁻¹[(1 − M) F S x + M y]`` against numpy's FFT for arbitrary maps, and, with
    RSS-normalised maps, equal to the Landweber step ``x + Aᴴ(y − A x)`` (experiments/aseq_dip_landweber.py)."""
    rng = np.random.default_rng(1)
    mask = cartesian_mask("random", (12, 10), 2, 0.2, 3)
    x = rng.normal(size=(12, 10, 2))
    y = (rng.normal(size=(4, 12, 10)) + 1j * rng.normal(size=(4, 12, 10))) * mask
    maps = rng.normal(size=(4, 12, 10)) + 1j * rng.normal(size=(4, 12, 10))
    op = MultiCoilMRI(maps=jnp.asarray(maps), mask=jnp.asarray(mask, jnp.float64), in_shape=(12, 10, 2))
    k = (1 - mask) * _numpy_sense(maps, np.ones_like(mask), x[..., 0] + 1j * x[..., 1]) + mask * y
    coil = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    expected = np.sum(np.conj(maps) * coil, axis=0)
    np.testing.assert_allclose(op.data_consistent(jnp.asarray(x), jnp.asarray(y)),
                               np.stack([expected.real, expected.imag], -1), rtol=1e-12, atol=1e-12)
    op = MultiCoilMRI(maps=jnp.asarray(birdcage_maps((4, 12, 10)), jnp.complex128),
                      mask=jnp.asarray(mask, jnp.float64), in_shape=(12, 10, 2))
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    np.testing.assert_allclose(op.data_consistent(xj, yj), xj + op.adjoint(yj - op(xj)), atol=1e-6)


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


def test_mri_task_simulates_from_a_finer_grid():
    from dipjax.data import load_image
    from dipjax.tasks import degradation_key, task_config

    x = load_image("phantom", 64, 1)
    p = task_config("mri", maps="birdcage", sigma=0.0).simulate(degradation_key(0, "phantom"), x)
    assert p.x_true.shape == (64, 64, 2) and p.y.shape == (8, 64, 64) and p.operator.complex_image
    np.testing.assert_allclose(p.operator.view(p.x_true)[..., 0], x[..., 0], atol=1e-5)  # |x_true| = the image
    mask = np.asarray(p.operator.mask)
    assert np.all(np.asarray(p.y)[:, mask == 0] == 0)  # nothing measured off the mask
    resid = float(jnp.linalg.norm(p.operator(p.x_true) - p.y) / jnp.linalg.norm(p.y))
    print("MRI: residual of the truth under the reconstruction operator (no noise):", resid)
    assert 1e-3 < resid < 0.2  # the data come from the finer grid, not from this operator
    same_grid = task_config("mri", maps="birdcage", sigma=0.0, oversample=1).simulate(degradation_key(0, "phantom"), x)
    assert float(jnp.linalg.norm(same_grid.operator(same_grid.x_true) - same_grid.y)) < 1e-4
    esp = task_config("mri", center_fraction=0.16).simulate(degradation_key(0, "phantom"), x)  # 10 centre columns
    support = np.asarray(jnp.sum(jnp.abs(esp.operator.maps) ** 2, axis=0) > 0)
    assert support[x[..., 0] > 0.1].mean() > 0.95  # ESPIRiT's maps cover the object
    from dipjax.validation import OptionError

    with pytest.raises(OptionError, match="ESPIRiT needs at least 8"):
        task_config("mri").simulate(degradation_key(0, "phantom"), x)  # 0.08 · 64 = 5 columns


def test_ct_task_simulates_from_a_finer_grid():
    from dipjax.data import load_image
    from dipjax.tasks import degradation_key, task_config

    x = load_image("ct_head", 64, 1)
    p = task_config("ct").simulate(degradation_key(0, "ct_head"), x)
    assert p.y.shape == (91, 18) and p.operator.init_image(p.y).shape == (64, 64, 1)
    resid = float(jnp.linalg.norm(p.operator(p.x_true) - p.y) / jnp.linalg.norm(p.y))
    print("CT: residual of the truth under the reconstruction operator:", resid)
    assert 1e-4 < resid < 0.1
    same = task_config("ct", oversample=1).simulate(degradation_key(0, "ct_head"), x)
    assert float(jnp.linalg.norm(same.operator(same.x_true) - same.y)) < 1e-3
    noisy = task_config("ct", photons=1e5).simulate(degradation_key(0, "ct_head"), x)
    assert 0 < float(jnp.linalg.norm(noisy.y - p.y) / jnp.linalg.norm(p.y)) < 0.2
    rand = task_config("ct", view_selection="random", views=20).simulate(degradation_key(0, "ct_head"), x)
    assert rand.operator.angles.shape == (20,) and not np.allclose(rand.operator.angles, view_angles(20))


@pytest.mark.parametrize("task", ["mri", "ct"])
def test_aseq_dip_medical_loss_is_the_scripts_unnormalised_norms(task):
    """aSeqDIP's MRI and CT presets minimise ``‖A f − y‖₂ + λ‖f − z‖₂`` with unnormalised norms, as the authors'
    ``torch.linalg.norm`` (Aseq_DIP_MRI.py, Aseq_DIP_CT.py): its first step's loss against numpy's (MRI's data
    term through numpy's FFT SENSE)."""
    from dipjax.data import load_image
    from dipjax.methods import build_method
    from dipjax.tasks import degradation_key, task_config

    config = task_config(task, **({"maps": "birdcage", "center_fraction": 0.25} if task == "mri" else {}))
    p = config.simulate(degradation_key(0, "phantom"), load_image("phantom", 32, 1))
    method = build_method("aseq_dip", config, tuple(p.x_true.shape), width=4, scales=1)
    assert method.norm == "euclidean" and method.lam == 1.0
    state = method.init(jax.random.key(0), p)
    f = np.asarray(method.network.apply({"params": state.params}, state.z), np.float64)
    z = np.asarray(state.z, np.float64)
    if task == "mri":
        op = p.operator
        af = _numpy_sense(np.asarray(op.maps), np.asarray(op.mask), f[..., 0] + 1j * f[..., 1])
    else:
        af = np.asarray(p.operator(jnp.asarray(f, jnp.float32)), np.float64)
    expected = np.linalg.norm(af - np.asarray(p.y)) + np.linalg.norm(f - z)
    _, info = jax.jit(lambda s: method.step(s, p, jax.random.key(1)))(state)
    assert float(info["loss"]) == pytest.approx(expected, rel=1e-4)


def test_self_guided_ct_preset_is_the_handbooks_loss():
    """Self-Guided DIP's CT preset minimises the DIP-CT handbook's ``‖A x̄ − y‖² / ‖A‖² + 0.01 J Σ_j ‖f_j − z‖²``
    (``selfg_dip.py``: sums of squares, J = 4) from the FBP input: its first step's loss against numpy's, with ‖A‖
    the largest singular value of the dense matrix of A."""
    from dipjax.data import load_image
    from dipjax.methods import build_method
    from dipjax.tasks import degradation_key, task_config

    config = task_config("ct")
    p = config.simulate(degradation_key(0, "phantom"), load_image("phantom", 32, 1))
    method = build_method("sg_dip", config, tuple(p.x_true.shape), width=4)
    state = method.init(jax.random.key(0), p)
    np.testing.assert_allclose(state.z, p.operator.init_image(p.y), atol=1e-6)  # z₀ = FBP
    basis = jnp.eye(32 * 32, dtype=jnp.float32).reshape(-1, 32, 32, 1)
    dense = np.asarray(jax.vmap(p.operator)(basis), np.float64).reshape(32 * 32, -1).T
    z = np.asarray(state.z, np.float64)
    key = jax.random.key(1)
    eta = 0.01 * z.max() * np.asarray(jax.random.uniform(key, (4,) + z.shape), np.float64)
    outs = np.asarray(method.network.apply({"params": state.params}, jnp.asarray(z[None] + eta, jnp.float32)),
                      np.float64)
    residual = dense @ outs.mean(0).ravel() - np.asarray(p.y, np.float64).ravel()
    expected = residual @ residual / np.linalg.norm(dense, 2) ** 2 + 0.01 * 4 * np.sum((outs - z) ** 2)
    _, info = jax.jit(lambda s: method.step(s, p, key))(state)
    assert float(info["loss"]) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("task, method, extra", [
    (task, method, extra) for method, extra in [("dip", ["--stop", "wmv", "--stop-window", "2"]), ("tv_dip", []),
                                                ("sg_dip", []), ("aseq_dip", [])] for task in ("mri", "ct")] + [
    ("mri", "conv_decoder", []), ("mri", "reference_dip", ["--reference", "camera"])])
def test_the_medical_methods_run_on_mri_and_ct(tmp_path, task, method, extra):
    """The methods the medical tasks list (ConvDecoder and reference-guided DIP for MRI, as their papers), 3 steps,
    tiny networks, 32² images (MRI with the simulating maps: ESPIRiT needs more centre columns than 32² leaves);
    reference-guided DIP with a 512² RGB reference it must resize. CT runs on pydicom's CT slice, whose HU range
    the metrics record (read here from the file with pydicom)."""
    import json
    import os

    import pydicom

    from dipjax.cli import main

    size_args = ["--width", "4", "--scales", "3" if method == "conv_decoder" else "1"]
    task_args = ["--maps", "birdcage"] if task == "mri" else []
    image = "phantom" if task == "mri" else "ct_small"
    out = tmp_path / "run"
    assert main(["reconstruct", "--task", task, "--method", method, "--image", image, "--size", "32",
                 "--steps", "3", "--no-progress", "--no-ssim", "--out", str(out)] + size_args + task_args + extra) == 0
    m = json.loads((out / image / "metrics.json").read_text())
    assert np.isfinite(m["psnr_final"]) and m["config"]["task"]["task"] == task
    if task == "mri":
        assert m["config"]["hyperparameters"]["network"].get("sigmoid", False) is False  # complex outputs
        assert "value_range" not in m  # not a DICOM image
    else:
        ds = pydicom.dcmread(os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", "CT_small.dcm"))
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert m["value_range"] == {"min": hu.min(), "max": hu.max(), "units": "HU"}


def test_deepred_refuses_complex_images(tmp_path, capsys):
    from dipjax.cli import main

    assert main(["reconstruct", "--task", "mri", "--maps", "birdcage", "--method", "deepred", "--image", "phantom",
                 "--size", "32", "--width", "4", "--scales", "2", "--steps", "2", "--no-progress",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "does not apply to complex images" in err


def test_reference_guided_dip_input():
    """Without a reference the input is init_image(y) (zero-filled for MRI); a reference is resized and becomes the
    real part of the complex input."""
    from dipjax.methods import build_method
    from dipjax.tasks import degradation_key, task_config

    config = task_config("mri", maps="birdcage")
    x = resize(shepp_logan_phantom(), (32, 32))[..., None]
    p = config.simulate(degradation_key(0, "phantom"), x)
    m = build_method("reference_dip", config, (32, 32, 2), width=4, scales=2)
    z = m.init(jax.random.key(0), p).z
    np.testing.assert_allclose(z, p.operator.adjoint(p.y), atol=1e-6)
    ref = np.random.default_rng(0).random((64, 48, 1))
    z = build_method("reference_dip", config, (32, 32, 2), width=4, scales=2, reference=ref).init(
        jax.random.key(0), p).z
    assert z.shape == (32, 32, 2) and float(jnp.abs(z[..., 1]).max()) == 0
    np.testing.assert_allclose(z[..., 0], jax.image.resize(ref[..., 0], (32, 32), "bilinear"), atol=1e-5)


def _fastmri_file(path, shape=(352, 336), coils=4, slices=2):
    """A fastMRI-layout file of a complex Shepp–Logan phantom seen by birdcage coils, at fastMRI's tiny scale."""
    from dipjax.fastmri import write_fastmri

    h, w = shape
    img = resize(shepp_logan_phantom(), shape, order=1) * np.exp(1j * np.linspace(0, 1, w))[None]
    k = np.asarray(fft2c(birdcage_maps((coils, h, w)) * img[None])) * 1e-4
    write_fastmri(str(path), np.stack([k * (1 + 0.1 * s) for s in range(slices)]))
    return k


def test_fastmri_file_reads_back_and_is_scored_against_its_rss(tmp_path):
    from dipjax.fastmri import center_crop, evaluate_slice, read_fastmri, write_fastmri
    from dipjax.tasks import task_config

    path = tmp_path / "file1000001.h5"
    k = _fastmri_file(path)
    with pytest.raises(FileExistsError):
        write_fastmri(str(path), k[None])
    sl = read_fastmri(str(path))
    assert (sl.index, sl.kspace.shape, sl.recon_size, sl.reference.shape) == (1, (4, 352, 336), (320, 320),
                                                                                       (320, 320))
    np.testing.assert_allclose(sl.kspace, 1.1 * k, rtol=1e-5, atol=1e-12)
    # fastMRI's RSS target, recomputed here with numpy's FFT and its crop offsets ((352-320)//2, (336-320)//2)
    coil_images = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(sl.kspace, axes=(-2, -1)), norm="ortho"),
                                  axes=(-2, -1))
    target = np.sqrt(np.sum(np.abs(coil_images) ** 2, 0))[16:336, 8:328]
    np.testing.assert_allclose(sl.reference, target, rtol=1e-4, atol=1e-9)
    np.testing.assert_array_equal(center_crop(np.arange(12.0).reshape(3, 4), (1, 2)), [[5.0, 6.0]])
    assert evaluate_slice(np.pad(target, ((16, 16), (8, 8))), target)["psnr"] == np.inf

    config = task_config("mri", kspace=str(path), slice=0)
    p, label = config.load_measured(jax.random.key(0))
    assert label == "file1000001-slice0" and p.image_shape == (352, 336, 2)
    assert abs(float(jnp.abs(p.operator.adjoint(p.y)).max()) - 1) < 0.05  # scaled by the zero-filled peak
    # The truth (full k-space combined by the ESPIRiT maps) is the file's RSS image up to the maps' accuracy.
    assert config.task_metrics(p, p.x_true)["psnr_fastmri"] > 40
    zero_filled = config.task_metrics(p, p.operator.adjoint(p.y))
    cg = config.task_metrics(p, least_squares_cg(p.operator, p.y, iters=20))
    assert cg["psnr_fastmri"] > zero_filled["psnr_fastmri"] + 1 and 0 < zero_filled["ssim_fastmri"] < cg["ssim_fastmri"]


def test_a_single_coil_fastmri_file_is_one_coil_scored_against_its_esc_image(tmp_path):
    """A single-coil file (``kspace`` (slices, H, W), reference ``reconstruction_esc``) reads as one coil; the task
    reconstructs it with S = 1, so the truth is the inverse FFT of the full k-space, which is the file's ESC image
    (numpy's FFT and fastMRI's crop here); a 3-D array that is not complex is refused in one line."""
    import h5py

    from dipjax.fastmri import FastMRIError, read_fastmri, write_fastmri
    from dipjax.tasks import task_config

    h, w = 72, 64
    img = resize(shepp_logan_phantom(), (h, w), order=1) * np.exp(1j * np.linspace(0, 2, w))[None]
    k = np.asarray(fft2c(img)) * 1e-3
    path = tmp_path / "file1000002.h5"
    write_fastmri(str(path), np.stack([k, 2 * k, 3 * k]), recon_size=(48, 48))
    with h5py.File(path) as f:
        assert "reconstruction_esc" in f and "reconstruction_rss" not in f and f["kspace"].shape == (3, h, w)
    sl = read_fastmri(str(path))
    assert (sl.index, sl.kspace.shape, sl.recon_size) == (1, (1, h, w), (48, 48))
    esc = np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(2 * k), norm="ortho")))[12:60, 8:56]
    np.testing.assert_allclose(sl.reference, esc, rtol=1e-4, atol=1e-9)

    config = task_config("mri", kspace=str(path), slice=1)
    p, label = config.load_measured(jax.random.key(0))
    assert label == "file1000002-slice1" and p.operator.coils == 1
    np.testing.assert_array_equal(np.asarray(p.operator.maps), np.ones((1, h, w)))
    truth = config.task_metrics(p, p.x_true)
    zero_filled = config.task_metrics(p, p.operator.adjoint(p.y))
    assert truth["psnr_fastmri"] > 60 and zero_filled["psnr_fastmri"] < truth["psnr_fastmri"] - 10

    with h5py.File(tmp_path / "real.h5", "w") as f:
        f.create_dataset("kspace", data=np.zeros((2, 8, 8), np.float32))
    with pytest.raises(FastMRIError, match="must be complex"):
        read_fastmri(str(tmp_path / "real.h5"))


def test_reconstruct_a_fastmri_file_from_the_cli(tmp_path, capsys):
    import json

    from dipjax.cli import main

    path = tmp_path / "knee.h5"
    _fastmri_file(path, slices=1)
    out = tmp_path / "out"
    assert main(["reconstruct", "--task", "mri", "--kspace", str(path), "--method", "dip", "--width", "4",
                 "--scales", "2", "--steps", "2", "--no-progress", "--no-ssim", "--out", str(out)]) == 0
    m = json.loads((out / "knee-slice0" / "metrics.json").read_text())
    assert np.isfinite(m["psnr_fastmri_final"]) and m["config"]["task"]["kspace"] == str(path)
    estimate = np.load(out / "knee-slice0" / "estimate.npy")  # the complex image, phase included
    assert estimate.dtype == np.complex64 and estimate.shape == (352, 336) and np.all(np.isfinite(estimate))
    assert np.abs(estimate.imag).max() > 0.01 * np.abs(estimate).max()
    for argv, message in [(["--slice", "3"], "out of range"), (["--image", "camera"], "does not apply"),
                          (["--maps", "birdcage"], "must be espirit")]:
        assert main(["reconstruct", "--task", "mri", "--kspace", str(path), "--steps", "1", "--out",
                     str(tmp_path / "bad")] + argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    assert main(["reconstruct", "--task", "mri", "--kspace", str(tmp_path / "x.h5"), "--out", str(tmp_path / "b")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_the_slices_of_a_volume_run_as_one_batch_each_scored_against_its_own_slice(tmp_path, capsys):
    """``--slices 0``: every slice of a 3-slice file in one batched run, one folder each; each folder's fastMRI
    score is its estimate's score against its own slice (recomputed here from ``estimate.npy``). ``--slices N``
    takes the N slices around ``--slice``, shifted into the volume; more slices than the file has exit 2."""
    import json

    from dipjax.cli import main
    from dipjax.fastmri import FastMRIError, write_fastmri
    from dipjax.operators import from_complex
    from dipjax.tasks import degradation_key, task_config

    h, w = 64, 64
    img = resize(shepp_logan_phantom(), (h, w), order=1) * np.exp(1j * np.linspace(0, 1, w))[None]
    k = np.asarray(fft2c(birdcage_maps((4, h, w)) * img[None])) * 1e-4
    path = tmp_path / "vol.h5"
    write_fastmri(str(path), np.stack([k * (1 + 0.1 * s) + 1e-6 * s for s in range(3)]), recon_size=(48, 48))
    parts = lambda **o: [t.slice for t in task_config("mri", kspace=str(path), **o).measured_parts()]  # noqa: E731
    assert parts() == [-1] and parts(slices=0) == [0, 1, 2] and parts(slices=2) == [1, 2]
    assert parts(slices=2, slice=0) == [0, 1] and parts(slices=3, slice=2) == [0, 1, 2]
    with pytest.raises(FastMRIError, match="has 3 slices"):
        parts(slices=4)

    out = tmp_path / "out"
    options = ["--task", "mri", "--kspace", str(path), "--center-fraction", "0.125", "--method", "dip", "--width",
               "4", "--scales", "2", "--steps", "2", "--no-progress", "--no-ssim"]
    assert main(["reconstruct", *options, "--slices", "0", "--out", str(out)]) == 0
    scores = []
    for i in range(3):
        m = json.loads((out / f"vol-slice{i}" / "metrics.json").read_text())
        assert m["batch_size"] == 3
        task = task_config("mri", kspace=str(path), center_fraction=0.125, slice=i)
        problem, _ = task.load_measured(degradation_key(0, "measured"))
        x = from_complex(np.load(out / f"vol-slice{i}" / "estimate.npy"))
        assert task.task_metrics(problem, x)["psnr_fastmri"] == pytest.approx(m["psnr_fastmri_final"], abs=1e-4)
        scores.append(m["psnr_fastmri_final"])
    assert len(set(scores)) == 3
    assert main(["reconstruct", *options, "--slices", "5", "--out", str(tmp_path / "bad")]) == 2
    assert "has 3 slices" in capsys.readouterr().err

    # dipjax dataset: each file's slices are one group, with the numbers the volume's reconstruct run gave
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "vol.h5").write_bytes(path.read_bytes())
    dataset = ["dataset", *[o for o in options if o not in ("--kspace", str(path))], "--inputs", str(tmp_path / "set")]
    assert main([*dataset, "--slices", "0", "--out", str(tmp_path / "set_out")]) == 0
    summary = json.loads((tmp_path / "set_out" / "summary.json").read_text())
    assert [r["image"] for r in summary["per_image"]] == [f"vol-slice{i}" for i in range(3)]
    for i in range(3):
        alone = json.loads((out / f"vol-slice{i}" / "metrics.json").read_text())
        in_set = json.loads((tmp_path / "set_out" / f"vol-slice{i}" / "metrics.json").read_text())
        assert in_set["config"]["task"]["slice"] == i and in_set["batch_size"] == 3
        for key in ("psnr_input", "psnr_final", "psnr_fastmri_final"):
            assert in_set[key] == alone[key], (i, key)
    capsys.readouterr()
    assert main(["reconstruct", *dataset[1:-2], "--image", "phantom", "--size", "32", "--slices", "2", "--out",
                 str(tmp_path / "simulated")]) == 2
    assert "applies to fastMRI files only" in capsys.readouterr().err


def test_a_ct_slice_is_normalised_from_air_not_from_its_padding():
    """``ct_head`` holds about −3040 HU outside its field of view: the [0, 1] image is ``(max(HU, −1000) + 1000) /
    (max + 1000)``, recomputed here from pydicom's pixels, so air is 0 (not 0.52, as min–max over the padding gave),
    and its recorded value range starts at air."""
    import os

    import pydicom

    from dipjax.data import BUNDLED_DICOM, read_dicom, value_range

    path = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", BUNDLED_DICOM["ct_head"][0])
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert hu.min() < -3000  # the padding this test is about
    np.testing.assert_allclose(read_dicom(path), (np.maximum(hu, -1000) + 1000) / (hu.max() + 1000), atol=1e-12)
    assert value_range("ct_head") == {"min": -1000.0, "max": hu.max(), "units": "HU"}


def test_dicom_flag_is_an_image_file(tmp_path, capsys):
    """``--dicom FILE`` reads like ``--image FILE.dcm`` (a dry run: configuration only); a missing file exits 2."""
    import json
    import os

    import pydicom

    from dipjax.cli import main

    path = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", "CT_small.dcm")
    assert main(["reconstruct", "--task", "ct", "--dicom", path, "--size", "64", "--dry-run", "--out",
                 str(tmp_path / "o")]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == [path]
    assert main(["reconstruct", "--task", "ct", "--dicom", str(tmp_path / "no.dcm"), "--out", str(tmp_path / "o")]) == 2
    assert "no.dcm" in capsys.readouterr().err


def test_a_folder_of_fastmri_files_is_a_dataset(tmp_path, capsys):
    """`dipjax dataset --task mri --inputs FOLDER` reconstructs every .h5 file of it (files of different sizes, one
    group each) with the numbers `dipjax reconstruct --kspace FILE` gives that file, scored against each file's RSS;
    a folder mixing files and images, or holding a file that cannot be used, is refused with one line before any
    compute."""
    import json

    import h5py

    from dipjax.cli import main
    from dipjax.fastmri import write_fastmri

    data = tmp_path / "knees"
    data.mkdir()
    for name, (h, w) in [("a", (64, 56)), ("b", (64, 72))]:
        img = resize(shepp_logan_phantom(), (h, w), order=1) * np.exp(1j * np.linspace(0, 1, w))[None]
        write_fastmri(str(data / f"{name}.h5"), np.asarray(fft2c(birdcage_maps((4, h, w)) * img[None]))[None] * 1e-4,
                      recon_size=(48, 48))
    net = ["--method", "dip", "--width", "4", "--scales", "2", "--steps", "3", "--no-progress", "--no-ssim",
           "--center-fraction", "0.25"]  # ESPIRiT needs 8 calibration columns of these narrow files
    assert main(["dataset", "--task", "mri", "--inputs", str(data), "--out", str(tmp_path / "set")] + net) == 0
    summary = json.loads((tmp_path / "set" / "summary.json").read_text())
    assert summary["images"] == 2 and np.isfinite(summary["metrics"]["psnr_fastmri_final"]["mean"])
    assert main(["reconstruct", "--task", "mri", "--kspace", str(data / "b.h5"), "--out", str(tmp_path / "one")]
                + net) == 0
    alone = json.loads((tmp_path / "one" / "b-slice0" / "metrics.json").read_text())
    in_set = json.loads((tmp_path / "set" / "b" / "metrics.json").read_text())
    assert in_set["config"]["task"]["kspace"] == str(data / "b.h5")
    for key in ("psnr_input", "psnr_final", "psnr_peak_oracle", "psnr_fastmri_final", "ssim_fastmri_final"):
        assert in_set[key] == alone[key], key
    capsys.readouterr()
    (data / "c.png").write_bytes((tmp_path / "set" / "b" / "estimate.png").read_bytes())
    assert main(["dataset", "--task", "mri", "--inputs", str(data), "--out", str(tmp_path / "mixed")] + net) == 2
    err = capsys.readouterr().err.strip()
    assert "mixes mri data files" in err and len(err.splitlines()) == 1 and not (tmp_path / "mixed").exists()
    # every file is read before any compute: an unusable second file is refused before the first one runs
    (data / "c.png").unlink()
    with h5py.File(data / "z.h5", "w") as f:
        f.create_dataset("kspace", data=np.zeros((1, 8, 8), np.float32))
    assert main(["dataset", "--task", "mri", "--inputs", str(data), "--out", str(tmp_path / "bad")] + net) == 2
    err = capsys.readouterr().err.strip()
    assert "must be complex" in err and len(err.splitlines()) == 1 and not (tmp_path / "bad").exists()
