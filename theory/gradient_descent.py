"""Plain gradient descent on ``½‖A f_θ(z) − y‖²``: the real training that eq. (6) linearises.

With the summed (not averaged) squared loss the gradient step is ``θ ← θ − η Jᵀ Aᵀ (A f − y)``, so to first order
the output moves by ``−η J Jᵀ Aᵀ(A f − y)``: exactly eq. (6) with ``K = J Jᵀ`` at the same η. Compare the two with
:func:`dipjax.theory.filter_recursion.iterate` on the empirical NTK at initialisation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def train_gradient_descent(apply, params, z, matrix, y, eta: float, steps: int):
    """Run ``steps`` gradient-descent steps from ``params``; returns ``(outputs (steps + 1, n), final params)``,
    ``outputs[t]`` the flattened network output after t steps (``outputs[0]`` at initialisation).

    ``matrix`` is the dense ``A`` (m × n) acting on the flattened output. The step is jit-compiled and driven from
    a host loop (on XLA CPU a rolled ``lax.scan`` of a convolutional step is several times slower); outputs stay on
    the device until the end.
    """
    matrix = jnp.asarray(matrix)
    y = jnp.asarray(y).reshape(-1)

    def loss(p):
        f = apply(p, z).reshape(-1)
        r = matrix @ f - y
        return 0.5 * jnp.sum(r * r), f

    @jax.jit
    def step(p):
        (_, f), g = jax.value_and_grad(loss, has_aux=True)(p)
        return jax.tree_util.tree_map(lambda a, b: a - eta * b, p, g), f

    outputs = []
    for _ in range(steps):
        params, f = step(params)
        outputs.append(f)  # f is the output before this step's update
    outputs.append(apply(params, z).reshape(-1))
    return jnp.stack(outputs), params
