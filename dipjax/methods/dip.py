"""Vanilla Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018; survey eq. (2)).

    θ* = argmin_θ  mean |A f_θ(z) − y|²,    x* = f_θ*(z)

trained with Adam (lr 0.01) from a random θ and a fixed random input ``z ~ 0.1 · U[0, 1)`` with 32 channels. Each
step feeds the perturbed input ``z + σ_p ε`` (ε ~ N(0, I) redrawn every step; σ_p = 1/30 for denoising at σ = 25,
0.03 for ×4 super-resolution and inpainting, 0.05 for ×8, per the DIP notebooks). The data term is the *mean* squared
error, as ``torch.nn.MSELoss`` in the reference code, so learning rates carry over.

What the method reports, as the reference notebooks do: the network output of the step's forward pass (before the
parameter update), optionally smoothed by an exponential moving average ``x̄ ← ρ x̄ + (1 − ρ) x`` (ρ = 0.99 in the DIP
denoising notebook; ``output_ema = 0`` turns it off). Without early stopping or averaging, DIP eventually fits the noise.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from dipjax.networks import skip_net
from dipjax.regularizers import residual_norm


class DIPState(NamedTuple):
    params: Any
    opt_state: Any
    z: jax.Array  # the fixed network input
    x: jax.Array  # network output of the last step's forward pass
    x_avg: jax.Array  # exponential moving average of x (equals x when output_ema == 0)
    step: jax.Array  # number of completed steps (int32)


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


def mean_squared_residual(operator, x, y) -> jax.Array:
    """``mean |A x − y|²`` (complex-safe), the DIP data term."""
    return residual_norm(operator(x) - y, "l2sq")


def check_output(x, problem) -> None:
    """Raise ``ValueError`` unless the network output ``x`` has the image shape of ``problem``."""
    if tuple(x.shape) != tuple(problem.image_shape):
        raise ValueError(f"network output {tuple(x.shape)} does not match the image shape "
                         f"{tuple(problem.image_shape)}: build the network with out_channels={problem.image_shape[-1]}")


def init_network(network, key, problem, input_kind: str = "noise", input_scale: float = 0.1):
    """Check the image size, draw the fixed input ``z`` (DIP's ``get_noise``) and the weights, and run the network
    once: ``(params, z, x)``. The shared start of DIP-style methods."""
    h, w, _ = problem.image_shape
    network.check_size(h, w)
    k_net, k_z = jax.random.split(key)
    z = random_input(k_z, network.input_shape(h, w), input_kind, input_scale)
    params = network.init(k_net, z)["params"]
    x = network.apply({"params": params}, z)
    check_output(x, problem)
    return params, z, x


def ema(avg, x, rho: float):
    """Exponential moving average ``ρ avg + (1 − ρ) x`` (``x`` itself when ``ρ = 0``)."""
    return rho * avg + (1 - rho) * x if rho else x


@dataclasses.dataclass(frozen=True)
class DIP:
    """Deep Image Prior with the published defaults (denoising at σ = 25: ``input_noise_std = 1/30``)."""

    network: nn.Module = dataclasses.field(default_factory=skip_net)
    lr: float = 0.01
    input_noise_std: float = 1.0 / 30.0
    input_kind: str = "noise"
    input_scale: float = 0.1
    output_ema: float = 0.0
    name: str = "dip"

    def __post_init__(self):
        if self.lr <= 0 or self.input_noise_std < 0 or not 0 <= self.output_ema < 1:
            raise ValueError("DIP needs lr > 0, input_noise_std >= 0 and 0 <= output_ema < 1")

    def optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.lr)

    def make_input(self, key, problem) -> jax.Array:
        """The fixed network input ``z`` (a hook: reference-guided DIP feeds a given image instead)."""
        h, w, _ = problem.image_shape
        return random_input(key, self.network.input_shape(h, w), self.input_kind, self.input_scale)

    def objective(self, x, problem) -> jax.Array:
        """The loss of the network output ``x`` (a hook: TV-DIP adds its regulariser)."""
        return mean_squared_residual(problem.operator, x, problem.y)

    def init(self, key, problem) -> DIPState:
        self.network.check_size(*problem.image_shape[:2])
        k_net, k_z = jax.random.split(key)
        z = self.make_input(k_z, problem)
        params = self.network.init(k_net, z)["params"]
        x = self.network.apply({"params": params}, z)
        check_output(x, problem)
        return DIPState(params, self.optimizer().init(params), z, x, x, jnp.zeros((), jnp.int32))

    def step(self, state: DIPState, problem, key):
        z_in = state.z + self.input_noise_std * jax.random.normal(key, state.z.shape, state.z.dtype)

        def loss_fn(params):
            x = self.network.apply({"params": params}, z_in)
            return self.objective(x, problem), x

        (loss, x), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.optimizer().update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        x_avg = ema(state.x_avg, x, self.output_ema)
        return DIPState(params, opt_state, state.z, x, x_avg, state.step + 1), {"loss": loss}

    def estimate(self, state: DIPState, problem) -> jax.Array:
        return state.x_avg
