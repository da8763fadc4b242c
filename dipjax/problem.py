"""A reconstruction problem: the forward model, the measurements and (optionally) the ground truth.

``Problem`` is a pytree. A batch of problems is the same pytree with a leading axis on every array leaf
(:func:`stack_problems`), which is what :func:`dipjax.engine.reconstruct` vmaps over.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Problem:
    """``y = A x_true + n``. ``x_true`` (shape ``operator.in_shape``) is optional and used only for metrics."""

    operator: Any
    y: jax.Array
    x_true: jax.Array | None = None
    #: Number of problems stacked on the leading axis (set by :func:`stack_problems`); ``None`` for one problem.
    #: Explicit because shapes alone cannot tell: a batched mask broadcasts against one image.
    batch_size: int | None = struct.field(pytree_node=False, default=None)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.operator.in_shape)

    def __getitem__(self, i: int) -> "Problem":
        """The ``i``-th problem of a batch."""
        if self.batch_size is None:
            raise TypeError("this Problem is a single problem, not a batch")
        return jax.tree_util.tree_map(lambda a: a[i], self).replace(batch_size=None)


def make_problem(key, operator, x_true, noise: Callable | None = None) -> Problem:
    """Simulate measurements ``y = noise(key, A x_true)`` of a known image (``noise=None``: noiseless)."""
    x_true = jnp.asarray(x_true, jnp.float32)
    if x_true.shape != tuple(operator.in_shape):
        raise ValueError(f"image of shape {x_true.shape} does not fit an operator on {tuple(operator.in_shape)}")
    y = operator(x_true)
    if noise is not None:
        y = noise(key, y)
    if not bool(jnp.all(jnp.isfinite(y))):
        raise ValueError("simulated measurements are not finite")
    return Problem(operator=operator, y=y, x_true=x_true)


def stack_problems(problems: Sequence[Problem]) -> Problem:
    """Stack problems with the same static configuration into one batched problem (leading axis ``B``)."""
    problems = list(problems)
    if not problems:
        raise ValueError("need at least one problem to stack")
    structure = jax.tree_util.tree_structure(problems[0])
    for p in problems[1:]:
        if jax.tree_util.tree_structure(p) != structure:
            raise ValueError("problems in a batch must share operator type, static configuration and shapes")
    if any(p.batch_size is not None for p in problems):
        raise ValueError("cannot stack problems that are already batches")
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *problems).replace(batch_size=len(problems))
