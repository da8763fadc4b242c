"""Infinite-width NNGP and NTK kernels and the matching finite network from one layer list (a ``stax`` work-alike).

Researchers whose neural-tangents code no longer runs can move over with the same call shape::

    from dipjax.theory import stax
    init_fn, apply_fn, kernel_fn = stax.serial(
        stax.Conv(256, (3,), padding="CIRCULAR", W_std=2**0.5, b_std=0.1), stax.Relu(),
        stax.Conv(1, (3,), padding="CIRCULAR", W_std=2**0.5, b_std=0.1))
    k = kernel_fn(x1, x2, ("nngp", "ntk"))          # k.nngp, k.ntk

Conventions (those of neural-tangents' ``stax``, NTK parameterisation, so kernels compare with published ones):

* Inputs are channels-last: ``(N, features)``, ``(N, H, C)`` or ``(N, H, W, C)``.
* A layer computes ``W_std / sqrt(fan_in) · (W ⋆ x) + b_std · b`` with ``W, b ~ N(0, 1)``; ``fan_in`` counts input
  channels times the filter size. ``b_std=None`` means no bias. ``Dense`` acts on the channel axis at every position.
* The input kernel is ``Σ_c x1[..., c] x2[..., c] / C`` (the mean over channels).
* Kernels keep the full spatial covariance. **Axis order is natural**: ``(N1, N2)`` then, for each spatial axis in
  turn, the pair ``(position in x1, position in x2)``: ``(N1, N2, H1, H2)`` in 1-D and ``(N1, N2, H1, H2, W1, W2)``
  in 2-D (neural-tangents orders them ``(N1, N2, H1, W1, H2, W2)``-reversed; dipjax does not). After ``Flatten`` or
  ``GlobalAvgPool`` the kernel is ``(N1, N2)``. For a network with several output channels the kernel between
  output channels ``c, c'`` is ``δ_cc'`` times the returned one.
* Recursions (Jacot et al. 2018; Arora et al. 2019 for convolutions): an affine layer maps
  ``Σ ↦ W_std² 𝒞(Σ) + b_std²`` and ``Θ ↦ W_std² 𝒞(Θ) + Σ'`` where ``𝒞`` averages the kernel over the filter's
  offsets applied to both positions at once (``Σ'(i, j) = Σ_δ Σ(i+δ, j+δ) / |filter|``, zero padding for SAME,
  wrap-around for CIRCULAR, no padding for VALID); a nonlinearity φ maps ``Σ ↦ E[φ(u) φ(v)]`` and
  ``Θ ↦ Θ · E[φ'(u) φ'(v)]`` with ``(u, v)`` Gaussian of covariance given by Σ at the two positions
  (closed forms: arc-cosine kernels for (leaky) ReLU, Williams 1997 for erf).
* ``FanInSum`` adds the branch kernels, which is exact when the branches' outputs are uncorrelated — true when all
  but at most one branch end in an independently initialised zero-mean affine layer (residual blocks, skip sums).

Computation is done over the joint batch ``[x1; x2]`` (a nonlinearity needs each input's own variance at every
position, and pooling needs the full self-covariance), then the ``(x1, x2)`` block is returned. Cost grows like
``(N1 + N2)² · (H W)²``: this is a tool for small theoretical examples. Use float64 (``jax_enable_x64``) for 1e-6
agreement with reference implementations.

The same layer list builds the finite-width network: ``init_fn(key, input_shape) -> (output_shape, params)`` and
``apply_fn(params, x)``, and :func:`as_network` wraps them for the dipjax engine and methods, so the analysed and the
trained network cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

__all__ = ["Kernel", "serial", "parallel", "FanOut", "FanInSum", "Dense", "Conv", "Relu", "LeakyRelu", "ABRelu",
           "Erf", "Identity", "Flatten", "GlobalAvgPool", "as_network", "StaxNetwork"]


class Kernel(NamedTuple):
    """NNGP and NTK between two inputs; natural spatial axis order (see the module docstring)."""

    nngp: jax.Array
    ntk: jax.Array


class Layer(NamedTuple):
    init_fn: Callable
    apply_fn: Callable
    kernel_fn: Callable  # joint Kernel (or list of them, between FanOut and FanInSum) -> same


# --- helpers on the joint kernel (N, N, S1, S1, S2, S2, ...) ---------------------------------------------------

def _spatial_dims(k: jax.Array) -> int:
    return (k.ndim - 2) // 2


def _variances(k: jax.Array) -> jax.Array:
    """Per-input, per-position variance ``(N, S1, S2, ...)``: the diagonal of every axis pair."""
    v = k
    for _ in range(k.ndim // 2):
        v = jnp.diagonal(v, axis1=0, axis2=1)  # the diagonal axis moves to the end
    return v


def _outer(q: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``q`` at the first and at the second position of every pair, broadcastable to the joint kernel's shape."""
    d = q.ndim
    first = q.reshape(sum(((s, 1) for s in q.shape), ()))
    second = q.reshape(sum(((1, s) for s in q.shape), ()))
    assert first.ndim == 2 * d
    return first, second


def _filter_average(k: jax.Array, axis: int, size: int, padding: str) -> jax.Array:
    """Average of ``k`` over filter offsets applied jointly to the pair of axes ``(axis, axis + 1)``."""
    n = k.shape[axis]
    if padding == "CIRCULAR":
        r = size // 2
        return sum(jnp.roll(k, (-d, -d), (axis, axis + 1)) for d in range(-r, r + 1)) / size
    if padding == "SAME":
        r = size // 2
        pad = [(0, 0)] * k.ndim
        pad[axis] = pad[axis + 1] = (r, r)
        k = jnp.pad(k, pad)
        out_n = n
    else:  # VALID
        out_n = n - size + 1
    total = 0
    for s in range(size):
        total = total + jax.lax.slice_in_dim(jax.lax.slice_in_dim(k, s, s + out_n, axis=axis), s, s + out_n,
                                             axis=axis + 1)
    return total / size


def _affine_kernel(k: Kernel, w_std: float, b_std: float | None, filter_shape: tuple, padding: str) -> Kernel:
    nngp, ntk = k.nngp, k.ntk
    for d, size in enumerate(filter_shape):
        nngp = _filter_average(nngp, 2 + 2 * d, size, padding)
        ntk = _filter_average(ntk, 2 + 2 * d, size, padding)
    nngp = w_std ** 2 * nngp + (b_std ** 2 if b_std is not None else 0.0)
    return Kernel(nngp, w_std ** 2 * ntk + nngp)


def _check_std(w_std, b_std):
    if not w_std > 0 or (b_std is not None and b_std < 0):
        raise ValueError(f"need W_std > 0 and b_std >= 0 (or None), got W_std={w_std}, b_std={b_std}")


# --- layers ------------------------------------------------------------------------------------------------------

def Conv(out_chan: int, filter_shape: Sequence[int], strides=None, padding: str = "VALID", W_std: float = 1.0,
         b_std: float | None = None, parameterization: str = "ntk") -> Layer:
    """1-D or 2-D convolution (``filter_shape`` of length 1 or 2, odd sizes for SAME/CIRCULAR), stride 1."""
    filter_shape = tuple(int(s) for s in filter_shape)
    padding = padding.upper()
    if padding not in ("SAME", "CIRCULAR", "VALID"):
        raise ValueError(f"padding must be 'SAME', 'CIRCULAR' or 'VALID', got {padding!r}")
    if len(filter_shape) not in (1, 2) or min(filter_shape) < 1:
        raise ValueError(f"filter_shape must have 1 or 2 positive sizes, got {filter_shape}")
    if padding != "VALID" and any(s % 2 == 0 for s in filter_shape):
        raise ValueError(f"{padding} padding needs odd filter sizes, got {filter_shape}")
    if strides is not None and any(s != 1 for s in strides):
        raise ValueError("only stride 1 is supported")
    if parameterization != "ntk":
        raise ValueError("only parameterization='ntk' is supported")
    _check_std(W_std, b_std)
    nd = len(filter_shape)

    def init_fn(key, input_shape):
        if len(input_shape) != nd + 2:
            raise ValueError(f"Conv with a {nd}-D filter needs inputs (N, {'H, ' * nd}C), got shape {input_shape}")
        spatial = input_shape[1:-1]
        if padding == "VALID":
            spatial = tuple(s - f + 1 for s, f in zip(spatial, filter_shape))
        kw, kb = jax.random.split(key)
        w = jax.random.normal(kw, filter_shape + (input_shape[-1], out_chan))
        b = jax.random.normal(kb, (out_chan,)) if b_std is not None else None
        return (input_shape[0],) + tuple(spatial) + (out_chan,), (w, b)

    def apply_fn(params, x, **_):
        w, b = params
        fan_in = w.shape[-2] * math.prod(filter_shape)
        if padding == "CIRCULAR":
            x = jnp.pad(x, [(0, 0)] + [(f // 2, f // 2) for f in filter_shape] + [(0, 0)], mode="wrap")
        dims = ("NHC", "HIO", "NHC") if nd == 1 else ("NHWC", "HWIO", "NHWC")
        y = jax.lax.conv_general_dilated(x, w.astype(x.dtype), (1,) * nd, "SAME" if padding == "SAME" else "VALID",
                                         dimension_numbers=dims)
        y = W_std / math.sqrt(fan_in) * y
        return y + b_std * b.astype(x.dtype) if b is not None else y

    def kernel_fn(k):
        if _spatial_dims(k.nngp) != nd:
            raise ValueError(f"Conv with a {nd}-D filter got a kernel with {_spatial_dims(k.nngp)} spatial axes")
        return _affine_kernel(k, W_std, b_std, filter_shape, padding)

    return Layer(init_fn, apply_fn, kernel_fn)


def Dense(out_dim: int, W_std: float = 1.0, b_std: float | None = None, parameterization: str = "ntk") -> Layer:
    """Fully connected layer on the last (channel) axis, at every spatial position if there are any."""
    if parameterization != "ntk":
        raise ValueError("only parameterization='ntk' is supported")
    _check_std(W_std, b_std)

    def init_fn(key, input_shape):
        kw, kb = jax.random.split(key)
        w = jax.random.normal(kw, (input_shape[-1], out_dim))
        b = jax.random.normal(kb, (out_dim,)) if b_std is not None else None
        return tuple(input_shape[:-1]) + (out_dim,), (w, b)

    def apply_fn(params, x, **_):
        w, b = params
        y = W_std / math.sqrt(w.shape[0]) * (x @ w.astype(x.dtype))
        return y + b_std * b.astype(x.dtype) if b is not None else y

    return Layer(init_fn, apply_fn, lambda k: _affine_kernel(k, W_std, b_std, (), "VALID"))


def _elementwise(fn: Callable, kernel_map: Callable) -> Layer:
    def kernel_fn(k):
        q = _variances(k.nngp)
        q1, q2 = _outer(q)
        nngp, dot = kernel_map(k.nngp, q1, q2)
        return Kernel(nngp, k.ntk * dot)

    return Layer(lambda key, shape: (shape, ()), lambda params, x, **_: fn(x), kernel_fn)


def _arccos_terms(cov, q1, q2):
    """``(sqrt(q1 q2), c, θ)`` with the correlation ``c`` clipped to [-1, 1] (zero-variance positions give c = 0)."""
    norm = jnp.sqrt(q1 * q2)
    safe = jnp.where(norm > 0, norm, 1.0)
    c = jnp.clip(jnp.where(norm > 0, cov / safe, 0.0), -1.0, 1.0)
    return norm, c, jnp.arccos(c)


def ABRelu(a: float, b: float) -> Layer:
    """``φ(x) = a·min(x, 0) + b·max(x, 0)``: ReLU is (0, 1), leaky ReLU (α, 1), identity (1, 1), |x| (−1, 1).

    With ``J(c) = sqrt(q1 q2)/(2π) (sin θ + (π − θ) c)`` (Cho & Saul's arc-cosine kernel, ``θ = arccos c``):
    ``E[φ(u)φ(v)] = (a² + b²) J(c) − 2ab J(−c)`` and ``E[φ'(u)φ'(v)] = ((a² + b²)(π − θ) + 2ab θ) / (2π)``.
    """

    def kernel_map(cov, q1, q2):
        norm, c, theta = _arccos_terms(cov, q1, q2)
        sin = jnp.sqrt(jnp.clip(1.0 - c * c, 0.0, 1.0))
        j_pos = norm / (2 * jnp.pi) * (sin + (jnp.pi - theta) * c)
        j_neg = norm / (2 * jnp.pi) * (sin - theta * c)  # J(−c): θ ↦ π − θ, c ↦ −c
        nngp = (a * a + b * b) * j_pos - 2 * a * b * j_neg
        dot = ((a * a + b * b) * (jnp.pi - theta) + 2 * a * b * theta) / (2 * jnp.pi)
        return nngp, dot

    return _elementwise(lambda x: a * jnp.minimum(x, 0) + b * jnp.maximum(x, 0), kernel_map)


def Relu() -> Layer:
    return ABRelu(0.0, 1.0)


def LeakyRelu(alpha: float) -> Layer:
    return ABRelu(alpha, 1.0)


def Identity() -> Layer:
    return Layer(lambda key, shape: (shape, ()), lambda params, x, **_: x, lambda k: k)


def Erf(a: float = 1.0, b: float = 1.0, c: float = 0.0) -> Layer:
    """``φ(x) = a·erf(b x) + c`` (Williams 1997): ``E[φφ'] = a² (2/π) arcsin(2b²Σ / sqrt((1+2b²q1)(1+2b²q2))) + c²``,
    ``E[φ'(u)φ'(v)] = a² b² (4/π) / sqrt((1+2b²q1)(1+2b²q2) − 4b⁴Σ²)``."""

    def kernel_map(cov, q1, q2):
        b2 = b * b
        prod = (1 + 2 * b2 * q1) * (1 + 2 * b2 * q2)
        nngp = a * a * (2 / jnp.pi) * jnp.arcsin(jnp.clip(2 * b2 * cov / jnp.sqrt(prod), -1.0, 1.0)) + c * c
        dot = a * a * b2 * (4 / jnp.pi) / jnp.sqrt(prod - 4 * b2 * b2 * cov * cov)
        return nngp, dot

    return _elementwise(lambda x: a * jax.scipy.special.erf(b * x) + c, kernel_map)


def _reduce_spatial(k: jax.Array, diagonal: bool) -> jax.Array:
    """Mean over spatial pairs: of the diagonal entries only (``Flatten``) or of all of them (``GlobalAvgPool``)."""
    for _ in range(_spatial_dims(k)):
        k = jnp.mean(jnp.diagonal(k, axis1=2, axis2=3), axis=-1) if diagonal else jnp.mean(k, axis=(2, 3))
    return k


def Flatten() -> Layer:
    """Flatten ``(N, *spatial, C) -> (N, prod(spatial)·C)``; the kernel averages over the spatial diagonal."""

    def init_fn(key, shape):
        return (shape[0], math.prod(shape[1:])), ()

    return Layer(init_fn, lambda params, x, **_: x.reshape(x.shape[0], -1),
                 lambda k: Kernel(_reduce_spatial(k.nngp, True), _reduce_spatial(k.ntk, True)))


def GlobalAvgPool() -> Layer:
    """Mean over all spatial positions ``(N, *spatial, C) -> (N, C)``."""

    def init_fn(key, shape):
        return (shape[0], shape[-1]), ()

    return Layer(init_fn, lambda params, x, **_: jnp.mean(x, axis=tuple(range(1, x.ndim - 1))),
                 lambda k: Kernel(_reduce_spatial(k.nngp, False), _reduce_spatial(k.ntk, False)))


def FanOut(num: int) -> Layer:
    """Copy the input into ``num`` branches (for :func:`parallel` and :func:`FanInSum`)."""
    return Layer(lambda key, shape: ([shape] * num, ()), lambda params, x, **_: [x] * num, lambda k: [k] * num)


def FanInSum() -> Layer:
    """Sum the branches (a residual connection); the kernels add, see the module docstring for when that is exact."""

    def init_fn(key, shapes):
        if len(set(map(tuple, shapes))) != 1:
            raise ValueError(f"FanInSum needs branches of equal shape, got {shapes}")
        return shapes[0], ()

    def kernel_fn(ks):
        return Kernel(sum(k.nngp for k in ks), sum(k.ntk for k in ks))

    return Layer(init_fn, lambda params, xs, **_: sum(xs), kernel_fn)


def parallel(*layers: Layer) -> Layer:
    """Apply the ``i``-th layer to the ``i``-th branch."""

    def init_fn(key, shapes):
        keys = jax.random.split(key, len(layers))
        outs = [layer.init_fn(k, s) for layer, k, s in zip(layers, keys, shapes)]
        return [o[0] for o in outs], tuple(o[1] for o in outs)

    def apply_fn(params, xs, **kw):
        return [layer.apply_fn(p, x, **kw) for layer, p, x in zip(layers, params, xs)]

    return Layer(init_fn, apply_fn, lambda ks: [layer.kernel_fn(k) for layer, k in zip(layers, ks)])


def _input_kernel(x: jax.Array) -> Kernel:
    nd = x.ndim - 2
    if nd not in (0, 1, 2):
        raise ValueError(f"inputs must be (N, C), (N, H, C) or (N, H, W, C), got shape {x.shape}")
    letters = "hw"[:nd]
    upper = letters.upper()
    out = "nm" + "".join(a + b for a, b in zip(letters, upper))
    nngp = jnp.einsum(f"n{letters}c,m{upper}c->{out}", x, x) / x.shape[-1]
    return Kernel(nngp, jnp.zeros_like(nngp))


def serial(*layers: Layer) -> Layer:
    """Compose layers. The returned ``kernel_fn(x1, x2=None, get=None)`` gives a :class:`Kernel` (or one array when
    ``get`` is ``"nngp"`` or ``"ntk"``); composed ``serial`` layers can be nested inside other ``serial`` calls."""

    def init_fn(key, input_shape):
        params = []
        for layer in layers:
            key, sub = jax.random.split(key)
            input_shape, p = layer.init_fn(sub, input_shape)
            params.append(p)
        return input_shape, tuple(params)

    def apply_fn(params, x, **kw):
        for layer, p in zip(layers, params):
            x = layer.apply_fn(p, x, **kw)
        return x

    def joint_kernel_fn(k):
        for layer in layers:
            k = layer.kernel_fn(k)
        return k

    def kernel_fn(x1, x2=None, get=None):
        if isinstance(x1, (Kernel, list)):  # nested use inside another serial
            return joint_kernel_fn(x1)
        x1 = jnp.asarray(x1)
        n1 = x1.shape[0]
        joint = x1 if x2 is None else jnp.concatenate([x1, jnp.asarray(x2, x1.dtype)], axis=0)
        if x2 is not None and x1.shape[1:] != joint.shape[1:]:
            raise ValueError(f"x1 and x2 must agree beyond the batch axis, got {x1.shape} and {x2.shape}")
        k = joint_kernel_fn(_input_kernel(joint))
        if isinstance(k, list):
            raise ValueError("the network ends with parallel branches: add FanInSum()")
        if x2 is not None:
            k = Kernel(k.nngp[:n1, n1:], k.ntk[:n1, n1:])
        if get is None or isinstance(get, (tuple, list)):
            return k
        if get not in ("nngp", "ntk"):
            raise ValueError(f"get must be 'nngp', 'ntk' or a tuple of them, got {get!r}")
        return getattr(k, get)

    return Layer(init_fn, apply_fn, kernel_fn)


# --- the finite network as a dipjax network ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StaxNetwork:
    """A stax ``(init_fn, apply_fn)`` pair with the interface of dipjax networks (``init``/``apply`` with
    ``{"params": ...}``, ``input_shape``, ``check_size``), so :class:`dipjax.methods.DIP` and the engine train it.

    ``apply`` takes one unbatched input ``(H, W, C)`` (or ``(H, C)``) like every dipjax network.
    """

    init_fn: Callable
    apply_fn: Callable
    in_channels: int
    spatial_dims: int = 2

    def init(self, key, z) -> dict[str, Any]:
        _, params = self.init_fn(key, (1,) + tuple(z.shape))
        return {"params": jax.tree_util.tree_map(lambda p: p.astype(z.dtype), params)}

    def apply(self, variables, z):
        return self.apply_fn(variables["params"], z[None])[0]

    def input_shape(self, height: int, width: int | None = None) -> tuple[int, ...]:
        return (height, width, self.in_channels) if self.spatial_dims == 2 else (height, self.in_channels)

    def check_size(self, height: int, width: int | None = None) -> None:
        return None


def as_network(layer, in_channels: int, spatial_dims: int = 2) -> StaxNetwork:
    """Wrap the finite network of ``serial(...)`` (or any ``(init_fn, apply_fn, kernel_fn)`` triple) for dipjax
    methods: ``DIP(network=as_network(net, 32))``."""
    init_fn, apply_fn = layer[0], layer[1]
    return StaxNetwork(init_fn, apply_fn, in_channels, spatial_dims)
