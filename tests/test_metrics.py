"""PSNR and SSIM against scikit-image."""

import jax.numpy as jnp
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dipjax.data import load_image
from dipjax.metrics import psnr, ssim


def _pairs():
    rng = np.random.default_rng(0)
    cam = load_image("camera", 64)
    ast = load_image("astronaut", 48)
    return [
        (cam, np.clip(cam + 0.1 * rng.standard_normal(cam.shape), 0, 1).astype(np.float32)),
        (ast, np.clip(ast + 0.05 * rng.standard_normal(ast.shape), 0, 1).astype(np.float32)),
        (rng.random((33, 40, 2)).astype(np.float32), rng.random((33, 40, 2)).astype(np.float32)),
    ]


@pytest.mark.parametrize("i", range(3))
def test_ssim_matches_skimage(i):
    ref, x = _pairs()[i]
    expected = structural_similarity(x, ref, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1)
    assert abs(float(ssim(x, ref)) - expected) < 1e-4


def test_psnr_matches_skimage_and_batches():
    pairs = _pairs()[:1]
    ref, x = pairs[0]
    assert abs(float(psnr(x, ref)) - peak_signal_noise_ratio(ref, x, data_range=1)) < 1e-4
    batch_x, batch_ref = jnp.stack([x, ref, 1 - x]), jnp.stack([ref, 1 - ref, ref])
    p, s = psnr(batch_x, batch_ref), ssim(batch_x, batch_ref)
    assert p.shape == s.shape == (3,)
    for j in range(3):
        assert abs(float(p[j]) - float(psnr(batch_x[j], batch_ref[j]))) < 1e-5
        assert abs(float(s[j]) - float(ssim(batch_x[j], batch_ref[j]))) < 1e-6
    assert float(ssim(ref, ref)) == pytest.approx(1.0, abs=1e-6)
