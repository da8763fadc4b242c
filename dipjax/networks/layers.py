"""Layers shared by dipjax's networks, written so that ``apply`` is a pure function of the parameters.

* :class:`Conv2d`: 2-D convolution with zero or reflection padding, stride, and a choice of ``weight_init`` —
  ``"pytorch"`` (``torch.nn.Conv2d`` default: weight and bias ~ U(−b, b), b = 1/√fan_in, fan_in = C_in·k·k; the
  published DIP-family defaults were tuned with it), ``"normal002"`` (weights N(0, 0.02²), bias 0: aSeqDIP and
  Self-Guided DIP), or ``"lecun"`` (Flax's default). Stride-1 1×1 convolutions go through :func:`pointwise_conv`,
  whose derivatives are matrix products (same values, faster on CPU).
* :class:`BatchNorm1Image`: batch normalisation of a batch of one image, i.e. per-channel normalisation over space,
  with its derivative in closed form (:func:`batch_norm_1image`).
  Every DIP-family code trains with batch size 1 and BatchNorm in train mode, so the statistics are the image's
  own; there are no running averages and no mutable collections. Applied to an ``(N, H, W, C)`` array it normalises
  each image separately (what a batch of independent size-1 runs does). ε = 1e-5 and biased variance, as PyTorch.
* Weights are drawn by :mod:`dipjax.networks.initializers` (initialise through its :func:`init_params`: the same
  values as ``network.init``, compiled several times faster).
* :func:`upsample2x`: nearest, or bilinear with ``align_corners`` False (PyTorch ``nn.Upsample`` default) or True.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import linen as nn

from dipjax.networks.initializers import normal, uniform

INITS = ("pytorch", "normal002", "lecun")


def _conv_nhwc(x, kernel, stride: int = 1, padding="VALID"):
    """XLA's convolution of ``(N, H, W, C_in)`` with an HWIO kernel."""
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), padding,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _channel_product(x, w):
    """``Σ_c x[..., c] w[c, :]``: a 1×1 convolution written as a matrix product over the channel axis, of ``x`` seen
    as a ``(pixels, C_in)`` matrix. Its transpose for ``w`` is then ``xᵀ g`` over two matrices, which XLA's CPU
    product reads as they lie; over the 4-D arrays it first copies ``x`` channel-major (a strided transpose of the
    whole activation; ``python experiments/bench_pointwise.py``)."""
    flat = jax.lax.dot_general(x.reshape(-1, x.shape[-1]), w, (((1,), (0,)), ((), ())))
    return flat.reshape(x.shape[:-1] + w.shape[1:])


def reflection_pad(x, p: int):
    """``x`` of shape ``(N, H, W, C)`` padded by ``p`` pixels on each side of both image axes, mirrored without
    repeating the edge (``jnp.pad(..., mode="reflect")``, PyTorch's ``ReflectionPad2d``), as one concatenation of the
    three row bands, each padded along the columns. ``jnp.pad`` pads one axis after the other, and the derivative
    XLA compiles for it is one full-size pass per border piece; this form is one pass each way
    (``python experiments/bench_reflection_pad.py``). Images with a side of at most ``p`` pixels (where reflection
    wraps more than once) go to ``jnp.pad``."""
    h, w = x.shape[-3], x.shape[-2]
    if p == 0:
        return x
    if min(h, w) <= p:
        return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")

    def borders(v, axis):
        n = v.shape[axis]
        low = jax.lax.rev(jax.lax.slice_in_dim(v, 1, p + 1, axis=axis), (axis,))
        high = jax.lax.rev(jax.lax.slice_in_dim(v, n - 1 - p, n - 1, axis=axis), (axis,))
        return low, high

    def columns(v):
        left, right = borders(v, 2)
        return jnp.concatenate([left, v, right], axis=2)

    top, bottom = borders(x, 1)
    return jnp.concatenate([columns(top), columns(x), columns(bottom)], axis=1)


@jax.custom_jvp
def pointwise_conv(x, kernel):
    """A 1×1 convolution of ``(N, H, W, C_in)`` with an HWIO ``(1, 1, C_in, C_out)`` kernel, computed as XLA convolves
    it, with its tangent ``dx W + x dW`` written as matrix products over the channel axis. Their transposes (reverse
    mode) are ``g Wᵀ`` and ``Σ_{n,h,w} xᵀ g``, products over the NHWC arrays seen as ``(pixels, C)`` matrices
    (:func:`_channel_product`), where XLA's own filter gradient first lays ``x`` out channel-major, a strided
    transpose of the whole activation (``python experiments/profile_step.py``, ``experiments/bench_pointwise.py``)."""
    return _conv_nhwc(x, kernel)


@pointwise_conv.defjvp
def _pointwise_conv_jvp(primals, tangents):
    (x, kernel), (dx, dkernel) = primals, tangents
    return (_conv_nhwc(x, kernel),
            _channel_product(dx, kernel[0, 0]) + _channel_product(x, dkernel[0, 0]))


class Conv2d(nn.Module):
    """``k x k`` convolution on ``(..., H, W, C_in)`` with 'same'-style padding of ``(k - 1) // 2`` pixels."""

    features: int
    kernel_size: int = 3
    stride: int = 1
    padding: str = "reflection"  # "reflection" | "zero" | "valid"
    use_bias: bool = True
    weight_init: str = "pytorch"

    @nn.compact
    def __call__(self, x):
        if self.weight_init not in INITS:
            raise ValueError(f"unknown initialisation {self.weight_init!r}; expected one of {INITS}")
        c_in, k = x.shape[-1], self.kernel_size
        fan_in = c_in * k * k
        if self.weight_init == "pytorch":
            w_init = b_init = uniform(1.0 / math.sqrt(fan_in))
        elif self.weight_init == "normal002":
            w_init, b_init = normal(0.0, 0.02), nn.initializers.zeros
        else:
            w_init, b_init = nn.initializers.lecun_normal(), nn.initializers.zeros
        kernel = self.param("kernel", w_init, (k, k, c_in, self.features))
        lead = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])
        p = (k - 1) // 2
        if p and self.padding == "reflection":
            x = reflection_pad(x, p)
            pad = "VALID"
        elif p and self.padding == "zero":
            pad = ((p, p), (p, p))
        else:
            pad = "VALID"
        if k == 1 and self.stride == 1:
            y = pointwise_conv(x, kernel.astype(x.dtype))
        else:
            y = _conv_nhwc(x, kernel.astype(x.dtype), self.stride, pad)
        if self.use_bias:
            y = y + self.param("bias", b_init, (self.features,)).astype(y.dtype)
        return y.reshape(lead + y.shape[1:])


def _spatial_mean(x):
    return jnp.mean(x, axis=(-3, -2), keepdims=True)


def _normalise_plain(x, eps: float):
    """``x̂ = (x − μ) / √(σ² + ε)`` per channel over ``(H, W)`` (biased σ², as PyTorch), and ``1 / √(σ² + ε)``."""
    mean = _spatial_mean(x)
    rstd = jax.lax.rsqrt(_spatial_mean(jnp.square(x - mean)) + eps)
    return (x - mean) * rstd, rstd


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _normalise(x, eps: float):
    return _normalise_plain(x, eps)[0]


@_normalise.defjvp
def _normalise_jvp(eps, primals, tangents):
    """The tangent in closed form, ``dx̂ = r (dx − mean dx − x̂ mean(x̂ dx))`` with ``r = 1/√(σ² + ε)``: a symmetric
    map, so its transpose (reverse mode) is the same two spatial means. Differentiating the two-pass formula instead
    costs about twice the reductions and elementwise passes: the 30 batch norms of the skip net 5 × 128 (forward
    and reverse, with their LeakyReLU) take 208 instead of 258 ms at 256² and 0.94 instead of 1.92 s at 512² on 2
    CPU cores (``python experiments/bench_batchnorm.py``)."""
    (x,), (dx,) = primals, tangents
    x_hat, rstd = _normalise_plain(x, eps)
    return x_hat, rstd * (dx - _spatial_mean(dx) - x_hat * _spatial_mean(x_hat * dx))


def batch_norm_1image(x, scale, bias, eps: float = 1e-5):
    """PyTorch ``BatchNorm2d`` in train mode on one image: per-channel normalisation over ``(H, W)``, then affine.
    Forward and reverse mode both use the closed-form tangent of :func:`_normalise_jvp`."""
    return _normalise(x, eps) * scale + bias


def batch_norm_1image_plain(x, scale, bias, eps: float = 1e-5):
    """:func:`batch_norm_1image` left to JAX's autodiff: the reference its closed-form derivative is tested and
    benchmarked against."""
    return _normalise_plain(x, eps)[0] * scale + bias


class BatchNorm1Image(nn.Module):
    """PyTorch ``BatchNorm2d`` in train mode on a batch of one image: per-channel normalisation over ``(H, W)``."""

    eps: float = 1e-5
    weight_init: str = "pytorch"  # "normal002": scale ~ N(1, 0.02²) as in aSeqDIP / SG-DIP

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        scale_init = normal(1.0, 0.02) if self.weight_init == "normal002" else nn.initializers.ones
        scale = self.param("scale", scale_init, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        return batch_norm_1image(x, scale, bias, self.eps)


def leaky_relu(x):
    """LeakyReLU with slope 0.2, DIP's activation."""
    return jnp.where(x >= 0, x, 0.2 * x)


ACTIVATIONS = {"leaky_relu": leaky_relu, "relu": jax.nn.relu, "elu": jax.nn.elu}


def _bilinear_axis_half_pixel(x, axis):
    """×2 linear interpolation along ``axis`` with half-pixel centres (align_corners=False), edges clamped:
    out[2i] = ¾ x[i] + ¼ x[i−1], out[2i+1] = ¾ x[i] + ¼ x[i+1]."""
    n = x.shape[axis]
    prev = jnp.concatenate([jax.lax.slice_in_dim(x, 0, 1, axis=axis), jax.lax.slice_in_dim(x, 0, n - 1, axis=axis)],
                           axis=axis)
    nxt = jnp.concatenate([jax.lax.slice_in_dim(x, 1, n, axis=axis), jax.lax.slice_in_dim(x, n - 1, n, axis=axis)],
                          axis=axis)
    even, odd = 0.75 * x + 0.25 * prev, 0.75 * x + 0.25 * nxt
    out = jnp.stack([even, odd], axis=axis + 1)
    return out.reshape(x.shape[:axis] + (2 * n,) + x.shape[axis + 1:])


def _bilinear_axis_corners(x, axis):
    """×2 linear interpolation along ``axis`` with align_corners=True (the U-Nets of aSeqDIP / milesial)."""
    n = x.shape[axis]
    if n == 1:
        return jnp.repeat(x, 2, axis=axis)
    pos = jnp.arange(2 * n) * (n - 1) / (2 * n - 1)
    lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, n - 2)
    frac = (pos - lo).astype(x.dtype)
    shape = [1] * x.ndim
    shape[axis] = 2 * n
    frac = frac.reshape(shape)
    return jnp.take(x, lo, axis=axis) * (1 - frac) + jnp.take(x, lo + 1, axis=axis) * frac


def upsample2x(x, mode: str = "bilinear", align_corners: bool = False):
    """Upsample the spatial axes ``(-3, -2)`` of ``(..., H, W, C)`` by 2 (PyTorch ``nn.Upsample`` semantics)."""
    if mode == "nearest":
        return jnp.repeat(jnp.repeat(x, 2, axis=-3), 2, axis=-2)
    if mode != "bilinear":
        raise ValueError(f"unknown upsampling mode {mode!r}; expected 'nearest' or 'bilinear'")
    interp = _bilinear_axis_corners if align_corners else _bilinear_axis_half_pixel
    return interp(interp(x, x.ndim - 3), x.ndim - 2)


def downsample2x(x, mode: str):
    """2×2 average or max pooling over the spatial axes (PyTorch ``AvgPool2d(2)`` / ``MaxPool2d(2)``)."""
    h, w = x.shape[-3] // 2 * 2, x.shape[-2] // 2 * 2
    x = x[..., :h, :w, :]
    blocks = x.reshape(x.shape[:-3] + (h // 2, 2, w // 2, 2, x.shape[-1]))
    if mode == "avg":
        return blocks.mean(axis=(-4, -2))
    if mode == "max":
        return blocks.max(axis=(-4, -2))
    raise ValueError(f"unknown pooling mode {mode!r}; expected 'avg' or 'max'")


def count_params(params) -> int:
    """Number of scalar parameters in a pytree."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
