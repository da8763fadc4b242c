"""Non-local means against scikit-image, TV and norms against direct numpy formulas."""

import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data
from skimage.restoration import denoise_nl_means

from dipjax.denoisers import NonLocalMeans, non_local_means
from dipjax.regularizers import residual_norm, total_variation


def _noisy(channels):
    rng = np.random.default_rng(0)
    img = data.astronaut()[100:140, 200:236].astype(np.float32) / 255
    img = img[..., :1] if channels == 1 else img
    return np.clip(img + rng.normal(0, 0.1, img.shape), 0, 1).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 3])
def test_non_local_means_matches_scikit_image(channels):
    noisy = _noisy(channels)
    kw = dict(h=0.08, sigma=0.1, patch_size=5, patch_distance=6)
    ref = denoise_nl_means(noisy if channels == 3 else noisy[..., 0], fast_mode=True,
                           channel_axis=-1 if channels == 3 else None, **kw).reshape(noisy.shape)
    same_exp = np.asarray(non_local_means(jnp.asarray(noisy), exp="skimage", **kw))
    np.testing.assert_allclose(same_exp, ref, atol=1e-4)
    exact = np.asarray(non_local_means(jnp.asarray(noisy), **kw))  # exact exp: a few 1e-3 away, far below the change
    assert np.abs(exact - ref).max() < 1e-2 < np.abs(ref - noisy).mean()


def test_deepred_denoiser_is_per_channel_nlm():
    noisy = _noisy(3)
    d = NonLocalMeans(sigma=0.1, exp="skimage")
    ref = np.stack([denoise_nl_means(noisy[..., c], h=0.06, sigma=0.1, patch_size=5, patch_distance=6,
                                     fast_mode=True) for c in range(3)], -1)
    # float32 inputs to the approximate exp can round across one of its steps: 1e-4, not 1e-6
    np.testing.assert_allclose(np.asarray(d(jnp.asarray(noisy))), ref, atol=1e-4)


def test_total_variation_and_norms_against_numpy():
    x = np.random.default_rng(1).random((5, 6, 2)).astype(np.float32)
    dv, dh = np.diff(x, axis=0), np.diff(x, axis=1)
    aniso = np.abs(dv).sum() + np.abs(dh).sum()
    iso = sum(np.sqrt((dv[i, j, c] if i < 4 else 0) ** 2 + (dh[i, j, c] if j < 5 else 0) ** 2 + 1e-8)
              for i in range(5) for j in range(6) for c in range(2))
    assert float(total_variation(jnp.asarray(x), "anisotropic", "sum")) == pytest.approx(aniso, rel=1e-5)
    assert float(total_variation(jnp.asarray(x), "anisotropic")) == pytest.approx(aniso / x.size, rel=1e-5)
    assert float(total_variation(jnp.asarray(x), "isotropic", "sum")) == pytest.approx(iso, rel=1e-5)
    r = x - 0.5
    assert float(residual_norm(r, "l2sq")) == pytest.approx(np.mean(r**2), rel=1e-5)
    assert float(residual_norm(r, "l2")) == pytest.approx(np.linalg.norm(r) / np.sqrt(r.size), rel=1e-5)
    assert float(residual_norm(r, "l1")) == pytest.approx(np.abs(r).mean(), rel=1e-5)
    assert float(residual_norm(r, "euclidean")) == pytest.approx(np.linalg.norm(r), rel=1e-5)
    rc = r[..., 0] + 1j * r[..., 1]  # complex: the modulus, as torch.linalg.norm
    assert float(residual_norm(jnp.asarray(rc), "euclidean")) == pytest.approx(np.linalg.norm(rc), rel=1e-5)
    assert float(residual_norm(jnp.asarray(rc), "euclidean_sq")) == pytest.approx(np.sum(np.abs(rc) ** 2), rel=1e-5)
    with pytest.raises(ValueError, match="TV kind"):
        total_variation(jnp.asarray(x), "l3")
