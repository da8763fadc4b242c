"""The method protocol: every reconstruction method is three pure functions on a frozen dataclass.

.. code-block:: python

    state = method.init(key, problem)              # params, optimiser state, input z, method extras
    state, info = method.step(state, problem, key) # one iteration; info: dict of scalar arrays ("loss", ...)
    x_hat = method.estimate(state, problem)        # the reconstruction the method would return now

The method object holds only static configuration (hyper-parameters, the network module); it is hashable and is a
static argument of ``jax.jit``. ``state`` is any pytree of arrays. ``problem`` is one :class:`dipjax.Problem`
(never a batch: the engine vmaps or loops over batches). ``key`` is a fresh PRNG key per step, derived by the engine as
``fold_in(run_key, t)``, so per-step randomness never needs state. A method never loops over iterations itself and
never touches the host: ``step`` must ``jit``, ``vmap`` and run under ``lax.scan``.

How every method of the survey fits, without changing the protocol:

* **Optimised inputs** (Self-Guided DIP, DRP): ``z`` is part of the trainable pytree; ``step`` differentiates with
  respect to ``(params, z)``.
* **Parameter groups with their own optimisers or learning rates** (SG-DIP θ vs z, DOP θ vs (g, h), DRP BN affines vs
  input BN vs z): one ``optax.multi_transform`` over a labelled pytree, its state inside ``state``.
* **Masks on parameters** (Optimal Eye Surgeon): the mask is a pytree shaped like ``params`` stored in ``state`` (or
  the mask logits are the trainable leaves while ``params`` are frozen); ``step`` multiplies gradients and weights by it.
* **Extra variables** (DOP's ``g, h``; DeepRED's ``x`` and dual ``u``; aSeqDIP's stage input ``z_k`` and inner-step
  counter): more leaves of ``state``. Stage switches (aSeqDIP's ``z ← f(z)`` every N steps) are ``lax.cond`` or
  ``jnp.where`` on a step counter kept in ``state``.
* **Per-step randomness** (input perturbation σ_p, Gumbel noise, SG-DIP's η draws): drawn from the step's ``key``.
* **Non-differentiated plug-ins** (DeepRED's denoiser refreshed every few steps, a diffusion purifier): called inside
  ``step`` under ``lax.stop_gradient`` and gated by the step counter; any ``x ↦ D(x)`` written in JAX fits.
* **Output averaging** (DIP's EMA 0.99, SG-DIP's sliding average): an image-sized leaf of ``state`` that ``estimate``
  returns.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax


class Method(Protocol):
    """Structural type of a reconstruction method (see the module docstring)."""

    name: str

    def init(self, key: jax.Array, problem) -> Any: ...

    def step(self, state: Any, problem, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]: ...

    def estimate(self, state: Any, problem) -> jax.Array: ...


class StaticArray:
    """A numpy array (or pytree of arrays) carried by a frozen method as *configuration*: hashable by content, so the
    method stays a valid static argument of ``jax.jit`` (a reference image, an Optimal Eye Surgeon mask).

    ``init`` copies it into the method state as device arrays; ``step`` reads it from there, so it is never baked
    into the compiled program as a constant.
    """

    def __init__(self, value):
        import hashlib

        import numpy as np

        self.value = jax.tree_util.tree_map(lambda a: np.array(a, copy=True), value)
        h = hashlib.sha1()
        leaves, treedef = jax.tree_util.tree_flatten(self.value)
        h.update(repr(treedef).encode())
        for a in leaves:
            h.update(str((a.shape, a.dtype)).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        self._digest = h.hexdigest()

    def __hash__(self):
        return hash(self._digest)

    def __eq__(self, other):
        return isinstance(other, StaticArray) and other._digest == self._digest

    def __repr__(self):
        shapes = [a.shape for a in jax.tree_util.tree_leaves(self.value)]
        return f"StaticArray({shapes if len(shapes) != 1 else shapes[0]}, sha1={self._digest[:10]})"
