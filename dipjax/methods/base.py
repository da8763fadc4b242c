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

Names every method's state shares, so that the engine and its monitors treat all methods alike:

* ``state.out``: the network output of this step's forward pass — the image whose loss was just differentiated. It
  is what early-stopping rules watch (ES-DIP monitors the raw output for the perturbed input, not an average).
* ``method.estimate(state, problem)``: the reconstruction the method reports now (``out`` itself, an exponential
  average of it, aSeqDIP's stage output, DeepRED's ADMM variable, ...); PSNR/SSIM and the oracle peak use it.
* ``state.step``: the number of parameter updates done so far (int32).

Iteration convention (all methods, the engine and its history): iteration ``k = 1, 2, …`` is the ``k``-th parameter
update. What is recorded for iteration ``k`` — the loss, ``out``, the estimate and its PSNR — belongs to the state
*after* that update, where ``out`` is the forward pass the update differentiated (the network with ``k − 1`` updates),
exactly as the reference notebooks print ``psnr(out)`` after ``optimizer.step()``.

One fitting step serves every method: :func:`fitting_step` (value and gradient of a loss over any pytree of trainable
variables → the method's optimiser, built once per method as a cached property → apply). Output averages use
:func:`ema`.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import jax
import jax.numpy as jnp
import optax

from dipjax.networks.initializers import init_params
from dipjax.regularizers import residual_norm


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


def fitting_step(optimizer: optax.GradientTransformation, loss_fn: Callable, variables, opt_state):
    """One optimiser step on ``loss_fn(variables) -> (loss, aux)``: value and gradient, ``optimizer.update``,
    ``optax.apply_updates``. Returns ``(variables, opt_state, loss, aux)``. ``variables`` is any pytree (network
    parameters, a trainable input, DOP's ``g, h``, OES's mask logits); parameter groups with their own learning rates
    are an ``optax.multi_transform`` optimiser over it."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables)
    updates, opt_state = optimizer.update(grads, opt_state, variables)
    return optax.apply_updates(variables, updates), opt_state, loss, aux


def ema(avg, x, rho: float):
    """Exponential moving average ``ρ avg + (1 − ρ) x`` (``x`` itself when ``ρ = 0``)."""
    return rho * avg + (1 - rho) * x if rho else x


def random_input(key, shape, kind: str = "noise", scale: float = 0.1) -> jax.Array:
    """DIP's ``get_noise``: ``scale · U[0, 1)`` noise, or a 2-channel ``meshgrid`` on [0, 1] (``shape[-1]`` must be 2)."""
    if kind == "noise":
        return scale * jax.random.uniform(key, shape)
    if kind == "meshgrid":
        if shape[-1] != 2:
            raise ValueError(f"a meshgrid input has 2 channels, got shape {shape}")
        yy, xx = jnp.meshgrid(jnp.linspace(0, 1, shape[0]), jnp.linspace(0, 1, shape[1]), indexing="ij")
        return jnp.stack([xx, yy], axis=-1)
    raise ValueError(f"unknown input kind {kind!r}; expected 'noise' or 'meshgrid'")


def check_output(x, problem) -> None:
    """Raise ``ValueError`` unless the network output ``x`` has the image shape of ``problem``."""
    if tuple(x.shape) != tuple(problem.image_shape):
        raise ValueError(f"network output {tuple(x.shape)} does not match the image shape "
                         f"{tuple(problem.image_shape)}: build the network with out_channels={problem.image_shape[-1]}")


def init_network(network, key, z, problem):
    """Check the image size, initialise the weights for input ``z`` and run the network once: ``(params, out)``.
    The shared start of every method that trains a network."""
    network.check_size(*problem.image_shape[:2])
    params = init_params(network, key, z)["params"]
    out = network.apply({"params": params}, z)
    check_output(out, problem)
    return params, out


def init_random_input(network, key, problem, kind: str = "noise", scale: float = 0.1):
    """DIP's start: a fixed random input ``z`` (:func:`random_input`, from the second half of ``key``) and the
    network initialised for it (first half): ``(params, z, out)``."""
    network.check_size(*problem.image_shape[:2])
    k_net, k_z = jax.random.split(key)
    h, w, _ = problem.image_shape
    z = random_input(k_z, network.input_shape(h, w), kind, scale)
    params, out = init_network(network, k_net, z, problem)
    return params, z, out


def image_input(network, problem) -> jax.Array:
    """The measurements' :meth:`~dipjax.operators.Operator.init_image` as a network input (aSeqDIP's ``z₀``,
    Self-Guided DIP's adjoint input), checked against the input shape the network takes."""
    h, w, _ = problem.image_shape
    z = problem.operator.init_image(problem.y).astype(jnp.float32)
    if tuple(network.input_shape(h, w)) != z.shape:
        raise ValueError(f"this method feeds the image-shaped init_image(y) {z.shape} to the network, which takes "
                         f"{network.input_shape(h, w)}: build it with in_channels={z.shape[-1]}")
    return z


def mean_squared_residual(operator, x, y) -> jax.Array:
    """``mean |A x − y|²`` (complex-safe), the DIP data term."""
    return residual_norm(operator(x) - y, "l2sq")
