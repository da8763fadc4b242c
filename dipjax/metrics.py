"""Image quality metrics in JAX, batched over leading axes: PSNR and SSIM for images in ``[0, 1]``, channels last."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def psnr(x, ref, data_range: float = 1.0):
    """Peak signal-to-noise ratio ``10 log10(R² / MSE)`` in dB over the last three axes ``(H, W, C)``."""
    x, ref = jnp.asarray(x), jnp.asarray(ref)
    mse = jnp.mean((x - ref) ** 2, axis=(-3, -2, -1))
    return 10.0 * jnp.log10(data_range**2 / mse)


#: SSIM's Gaussian window: σ = 1.5 truncated at 3.5 σ, 11 taps; images need sides of at least that many pixels.
SSIM_SIGMA, SSIM_TRUNCATE = 1.5, 3.5
SSIM_MIN_SIDE = 2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1


def _gaussian_taps(sigma: float, truncate: float):
    radius = int(truncate * sigma + 0.5)
    r = jnp.arange(-radius, radius + 1, dtype=jnp.float32)
    g = jnp.exp(-0.5 * (r / sigma) ** 2)
    return g / g.sum()


def _filter_valid(img, taps):
    """Separable 'valid' Gaussian filtering of ``(..., H, W)`` arrays (every output's window is inside the image)."""
    k = taps.shape[0]
    rows = sum(taps[i] * img[..., i : img.shape[-2] - k + 1 + i, :] for i in range(k))
    return sum(taps[i] * rows[..., :, i : img.shape[-1] - k + 1 + i] for i in range(k))


def ssim(x, ref, data_range: float = 1.0, sigma: float = SSIM_SIGMA, k1: float = 0.01, k2: float = 0.03):
    """Structural similarity (Wang et al. 2004) with an 11-tap Gaussian window (σ = 1.5), population covariances.

    Matches ``skimage.metrics.structural_similarity(x, ref, channel_axis=-1, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=data_range)``: the SSIM map is averaged over the pixels whose window lies
    inside the image (skimage filters the whole image and crops the border of width ``radius``, which is the same
    set) and then over channels. Works over the last three axes ``(H, W, C)``; leading axes are a batch.
    """
    x = jnp.moveaxis(jnp.asarray(x, jnp.float32), -1, -3)  # (..., C, H, W)
    ref = jnp.moveaxis(jnp.asarray(ref, jnp.float32), -1, -3)
    taps = _gaussian_taps(sigma, SSIM_TRUNCATE)
    if min(x.shape[-2:]) < taps.shape[0]:
        raise ValueError(f"SSIM's {taps.shape[0]}-pixel window needs images of at least {taps.shape[0]}x"
                         f"{taps.shape[0]}, got {x.shape[-2]}x{x.shape[-1]}")
    mu_x, mu_y = _filter_valid(x, taps), _filter_valid(ref, taps)
    var_x = _filter_valid(x * x, taps) - mu_x**2
    var_y = _filter_valid(ref * ref, taps) - mu_y**2
    cov = _filter_valid(x * ref, taps) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return jnp.mean(s, axis=(-3, -2, -1))


def align_up_to_phase_ambiguity(x, ref, pad: int):
    """``x`` moved to its best match with ``ref`` under the trivial ambiguities of Fourier phase retrieval
    (:mod:`dipjax.operators.phase_retrieval`): per channel (each is measured on its own), a global sign, the conjugate
    flip ``x(−r)`` (180° rotation) and a circular translation of the zero-padded frame of ``pad`` pixels per side,
    chosen by maximising the FFT cross-correlation ``⟨±T flip x, ref⟩``; returns the ``(H + 2p, W + 2p, C)`` padded,
    aligned estimate (content moved out of the image window stays, and counts as error against ``ref``'s zero frame).
    One image ``(H, W, C)``; jits and vmaps."""
    x, ref = jnp.asarray(x, jnp.float32), jnp.asarray(ref, jnp.float32)
    widths = ((pad, pad), (pad, pad), (0, 0))
    xp, rp = jnp.pad(x, widths), jnp.pad(ref, widths)
    flipped = jnp.roll(xp[::-1, ::-1], (1, 1), axis=(0, 1))  # x(−r) about the padded frame's centre pixel

    def best(candidate, target):
        corr = jnp.real(jnp.fft.ifft2(jnp.fft.fft2(target) * jnp.conj(jnp.fft.fft2(candidate))))
        i = jnp.argmax(jnp.abs(corr))
        sign = jnp.where(corr.reshape(-1)[i] < 0, -1.0, 1.0)
        moved = sign * jnp.roll(candidate, (i // corr.shape[1], i % corr.shape[1]), axis=(0, 1))
        return moved, jnp.sum(jnp.square(moved - target))

    def channel(c_x, c_f, c_r):
        (a, ea), (b, eb) = best(c_x, c_r), best(c_f, c_r)
        return jnp.where(ea <= eb, a, b)

    return jnp.moveaxis(jax.vmap(channel, in_axes=-1)(xp, flipped, rp), 0, -1)


def psnr_up_to_ambiguity(x, ref, pad: int, data_range: float = 1.0):
    """PSNR of ``x`` against ``ref`` after :func:`align_up_to_phase_ambiguity`: the squared error over the whole padded
    frame divided by the number of image pixels ``H·W·C``, so it equals :func:`psnr` when ``x`` is already aligned.
    One image ``(H, W, C)``."""
    aligned = align_up_to_phase_ambiguity(x, ref, pad)
    ref = jnp.pad(jnp.asarray(ref, jnp.float32), ((pad, pad), (pad, pad), (0, 0)))
    mse = jnp.sum(jnp.square(aligned - ref)) / jnp.size(x)
    return 10.0 * jnp.log10(data_range**2 / mse)
