"""Weight initialisers of dipjax's layers, and :func:`init_params`, which draws their random numbers together.

* :func:`uniform` — ``U(−b, b)`` (``torch.nn.Conv2d``'s default, b = 1/√fan_in);
* :func:`normal` — ``N(mean, std²)`` (aSeqDIP's and Self-Guided DIP's ``normal002``);
* :func:`init_params` — ``network.init(key, z)`` with the same values, compiled faster.

Why :func:`init_params`: each ``jax.random`` draw is its own threefry loop in the compiled program, and XLA's CPU
compiler pays a fixed cost per loop, one per convolution weight and bias: compiling a skip net's initialisation
took longer than compiling its training step (6–7 s for the test suite's width-8 net on 2 cores, against 2.1–2.5 s
with :func:`init_params`; 5.9–7.1 s against 3.1–3.9 s for DIP's 5 × 128 net). :func:`init_params` runs
``network.init`` while these initialisers only record ``(kind, key, shape)`` and return placeholders, then draws
the recorded arrays in a few ``vmap``-ed calls (one per kind and size class, :data:`SIZE_RATIO`), each at the length
of the largest of its class, and keeps each array's prefix.
The values are bit-for-bit those of ``network.init``: with JAX's partitionable threefry (its default since 0.5) the
bits of element ``i`` depend only on the key and ``i``, so a prefix of a longer draw is the shorter draw
(``tests/test_networks.py`` checks every network against ``network.init``). With any other random-number
implementation the arrays are drawn one by one, as ``network.init`` would. The times above are
``python experiments/bench_init_compile.py`` (``experiments/results/bench_init_compile/``, 3 rounds each).

The recording is a :class:`contextvars.ContextVar` set only for the duration of one :func:`init_params` call (as
flax scopes its own module context); outside it the initialisers draw directly.
"""

import contextvars
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp


class _Draw(NamedTuple):
    kind: str  # "uniform" | "normal"
    key: jax.Array
    shape: tuple[int, ...]
    dtype: object
    a: float  # uniform: low; normal: mean
    b: float  # uniform: high; normal: std
    placeholder: jax.Array


_RECORDED_DRAWS: contextvars.ContextVar[list | None] = contextvars.ContextVar("dipjax_recorded_draws", default=None)


def _sample(kind, key, shape, dtype, a, b):
    if kind == "uniform":
        return jax.random.uniform(key, shape, dtype, a, b)
    return a + b * jax.random.normal(key, shape, dtype)


def _initializer(kind: str, a: float, b: float):
    def init(key, shape, dtype=jnp.float32):
        draws = _RECORDED_DRAWS.get()
        if draws is None:
            return _sample(kind, key, tuple(shape), dtype, a, b)
        placeholder = jnp.zeros(shape, dtype)
        draws.append(_Draw(kind, key, tuple(shape), dtype, a, b, placeholder))
        return placeholder
    return init


def uniform(bound: float):
    """``U(−bound, bound)``, as ``jax.random.uniform(key, shape, dtype, −bound, bound)``."""
    return _initializer("uniform", -bound, bound)


def normal(mean: float, std: float):
    """``mean + std · N(0, 1)``, as ``mean + std * jax.random.normal(key, shape, dtype)``."""
    return _initializer("normal", mean, std)


def _prefix_draws_are_exact(key) -> bool:
    """Whether a draw of ``n`` values is the first ``n`` of a longer draw with the same key (partitionable
    threefry: element ``i`` is a function of the key and ``i`` alone)."""
    partitionable = getattr(jax.config, "jax_threefry_partitionable", True)  # always on where the flag is gone
    return partitionable and str(jax.random.key_impl(key)) == "threefry2x32"


def _draw_together(group: list[_Draw]) -> list[jax.Array]:
    """The arrays of ``group`` (one kind, dtype and size class) from one ``vmap``-ed draw over their keys."""
    first = group[0]
    if not all(_prefix_draws_are_exact(d.key) for d in group):
        return [_sample(d.kind, d.key, d.shape, d.dtype, d.a, d.b) for d in group]
    n = max(math.prod(d.shape) for d in group)
    keys = jnp.stack([d.key for d in group])
    a = jnp.asarray([d.a for d in group], first.dtype)
    b = jnp.asarray([d.b for d in group], first.dtype)
    flat = jax.vmap(lambda k, ai, bi: _sample(first.kind, k, (n,), first.dtype, ai, bi))(keys, a, b)
    return [flat[i, :math.prod(d.shape)].reshape(d.shape) for i, d in enumerate(group)]


#: Arrays drawn together are at least 1/SIZE_RATIO the size of the largest of their group, since each is drawn at
#: that length (a 256-entry bias drawn with 3 × 3 × 256 × 256 kernels would cost 589,824 draws). 4 keeps the extra
#: work within 4× the weights' own draws; 16 compiled about as fast (``experiments/bench_init_compile.py``).
SIZE_RATIO = 4


def _groups(draws: list[_Draw]) -> list[list[_Draw]]:
    """The draws by kind and dtype, each kind cut, largest first, into groups within :data:`SIZE_RATIO` in size."""
    by_kind: dict[tuple, list[_Draw]] = {}
    for d in sorted(draws, key=lambda d: -math.prod(d.shape)):
        by_kind.setdefault((d.kind, jnp.dtype(d.dtype)), []).append(d)
    groups = []
    for same_kind in by_kind.values():
        largest = 0  # of the current group
        for d in same_kind:
            if math.prod(d.shape) * SIZE_RATIO < largest or not largest:
                groups.append([])
                largest = math.prod(d.shape)
            groups[-1].append(d)
    return groups


def init_params(network, key, *args, **kwargs):
    """``network.init(key, *args, **kwargs)``, the same variables, with the draws of :func:`uniform` and
    :func:`normal` taken together (module docstring). Jits and vmaps like ``network.init``."""
    draws: list[_Draw] = []
    token = _RECORDED_DRAWS.set(draws)
    try:
        variables = network.init(key, *args, **kwargs)
    finally:
        _RECORDED_DRAWS.reset(token)
    values = {}
    for group in _groups(draws):
        values.update({id(d.placeholder): v for d, v in zip(group, _draw_together(group))})
    variables = jax.tree_util.tree_map(lambda leaf: values.pop(id(leaf), leaf), variables)
    if values:  # a placeholder flax did not store as returned: never hand back zeros for random weights
        raise RuntimeError(f"init_params: {len(values)} recorded weight(s) not found in the network's variables")
    return variables
