"""Convolutions as patch matrix products: a function transform for Jacobians with respect to convolution weights.

``convolutions_as_matmuls(fun)`` returns a function equal to ``fun`` whose ``lax.conv_general_dilated`` calls are
evaluated as an explicit patch extraction (one strided slice of the padded input per filter tap, stacked) followed by
one ``dot_general`` with the filter. The values are the same up to float rounding (a sum over the same products in
another order); what changes is how derivatives compile. Differentiating a convolution with respect to its filter
gives a convolution of the input with the output cotangent; under ``vmap`` over many cotangents (one per output entry,
which is what a Jacobian is) that cotangent becomes a batched *filter*, which XLA's CPU convolution runs slowly. With
the patch form the same derivative is a batched matrix product that runs at GEMM speed: the 3-layer circular CNN of
``experiments/bench_ntk.py`` builds its full Jacobian several times faster this way.

The transform traces ``fun`` to a jaxpr and re-evaluates it equation by equation (the interpreter pattern of JAX's
"Writing custom interpreters" guide), entering nested ``jit`` calls; any other primitive, including ``custom_jvp``
rules such as ``jax.nn.relu``'s, is bound unchanged. Convolutions with input dilation (transposed convolutions) or
feature/batch groups are left as they are.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable

import jax
import jax.extend.core as jcore
from jax import lax


def conv_by_patches(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                    precision=None, preferred_element_type=None, **_):
    """``lax.conv_general_dilated`` (no input dilation, no groups) as stacked strided slices and one ``dot_general``."""
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    nd = len(lhs_spec) - 2
    x = lax.transpose(lhs, lhs_spec)                       # (N, C, *spatial)
    w = lax.transpose(rhs, rhs_spec)                       # (O, I, *filter)
    x = lax.pad(x, jax.numpy.zeros((), x.dtype), [(0, 0, 0), (0, 0, 0)] + [(lo, hi, 0) for lo, hi in padding])
    filt = w.shape[2:]
    out_sizes = [(x.shape[2 + d] - (filt[d] - 1) * rhs_dilation[d] - 1) // window_strides[d] + 1 for d in range(nd)]
    taps = []
    for offset in itertools.product(*(range(k) for k in filt)):
        start = [0, 0] + [o * r for o, r in zip(offset, rhs_dilation)]
        limit = list(x.shape[:2]) + [s + (m - 1) * st + 1 for s, m, st in zip(start[2:], out_sizes, window_strides)]
        taps.append(lax.slice(x, start, limit, [1, 1] + list(window_strides)))
    patches = jax.numpy.stack(taps, axis=2)              # (N, C, T, *out)
    w = w.reshape(w.shape[:2] + (math.prod(filt),))        # (O, I, T), taps in the same C order as itertools.product
    y = lax.dot_general(patches, w, (((1, 2), (1, 2)), ((), ())), precision=precision,
                        preferred_element_type=preferred_element_type)  # (N, *out, O)
    canonical = lax.transpose(y, (0, nd + 1) + tuple(range(1, nd + 1)))  # (N, O, *out)
    inverse = [0] * (nd + 2)
    for i, axis in enumerate(out_spec):
        inverse[axis] = i
    return lax.transpose(canonical, inverse)


def _rewritable(params) -> bool:
    return (params["feature_group_count"] == 1 and params["batch_group_count"] == 1
            and all(d == 1 for d in params["lhs_dilation"]))


def _evaluate(jaxpr, consts, *args):
    env = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for var, val in zip(jaxpr.constvars, consts):
        env[var] = val
    for var, val in zip(jaxpr.invars, args):
        env[var] = val
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name == "conv_general_dilated" and _rewritable(eqn.params):
            outvals = [conv_by_patches(*invals, **eqn.params)]
        elif name in ("pjit", "jit"):
            inner = eqn.params["jaxpr"]
            outvals = _evaluate(inner.jaxpr, inner.consts, *invals)
        else:
            with eqn.ctx.manager:  # the same call as jax.core.eval_jaxpr makes
                outvals = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
            if not eqn.primitive.multiple_results:
                outvals = [outvals]
        for var, val in zip(eqn.outvars, outvals):
            env[var] = val
    return [read(v) for v in jaxpr.outvars]


def convolutions_as_matmuls(fun: Callable) -> Callable:
    """``fun`` with every plain convolution evaluated as patches × filter (see the module docstring).

    ``fun`` takes and returns pytrees of arrays; the result can be jitted, differentiated and vmapped like ``fun``.
    """

    def rewritten(*args):
        closed, out_shape = jax.make_jaxpr(fun, return_shape=True)(*args)
        flat = _evaluate(closed.jaxpr, closed.consts, *jax.tree_util.tree_leaves(args))
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(out_shape), flat)

    return rewritten
