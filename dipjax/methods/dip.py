"""Vanilla Deep Image Prior (Ulyanov, Vedaldi, Lempitsky, CVPR 2018; survey eq. (2)).

    θ* = argmin_θ  mean |A f_θ(z) − y|²,    x* = f_θ*(z)

trained with Adam (lr 0.01) from a random θ and a fixed random input ``z ~ 0.1 · U[0, 1)`` with 32 channels. Each
step feeds the perturbed input ``z + σ_p ε`` (ε ~ N(0, I) redrawn every step; σ_p per task in :data:`PRESETS`, from
the DIP notebooks). The data term is the *mean* squared error, as ``torch.nn.MSELoss`` in the reference code, so
learning rates carry over. ``input_noise_decay`` multiplies σ_p by that factor every ``input_noise_decay_every``
steps (the Deep Decoder's ``reg_noise_decayevery``; off by default).

What the method reports, as the reference notebooks do: the network output of the step's forward pass (before the
parameter update), optionally smoothed by an exponential moving average ``x̄ ← ρ x̄ + (1 − ρ) x`` (ρ = 0.99 in the DIP
denoising notebook; ``output_ema = 0``, the default here, reports the raw output whose overfitting the survey
plots). Without early stopping or averaging, DIP eventually fits the noise.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from dipjax.methods.base import ema, fitting_step, init_network, mean_squared_residual, random_input
from dipjax.methods.registry import MethodSpec, Option, preset, register_method
from dipjax.networks import skip_net
from dipjax.validation import require, require_finite


class DIPState(NamedTuple):
    params: Any
    opt_state: Any
    z: jax.Array  # the fixed network input
    out: jax.Array  # network output of the last step's forward pass
    out_avg: jax.Array  # exponential moving average of out (equals out when output_ema == 0)
    step: jax.Array  # number of completed steps (int32)


@dataclasses.dataclass(frozen=True)
class DIP:
    """Deep Image Prior with the published defaults (denoising at σ = 25: ``input_noise_std = 1/30``)."""

    network: nn.Module = dataclasses.field(default_factory=skip_net)
    lr: float = 0.01
    input_noise_std: float = 1.0 / 30.0
    input_noise_decay: float = 1.0
    input_noise_decay_every: int = 0
    input_kind: str = "noise"
    input_scale: float = 0.1
    output_ema: float = 0.0
    name: str = "dip"

    def __post_init__(self):
        require_finite(self, "lr", "input_noise_std", "input_noise_decay", "input_scale", "output_ema")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(self.input_noise_std >= 0, "input_noise_std", f"must be non-negative, got {self.input_noise_std}")
        require(0 < self.input_noise_decay <= 1 and self.input_noise_decay_every >= 0, "input_noise_decay",
                "must be in (0, 1] with input_noise_decay_every >= 0")
        require(0 <= self.output_ema < 1, "output_ema", f"must be in [0, 1), got {self.output_ema}")

    @functools.cached_property
    def optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.lr)

    def make_input(self, key, problem) -> jax.Array:
        """The fixed network input ``z`` (a hook: reference-guided DIP feeds a given image instead)."""
        h, w, _ = problem.image_shape
        return random_input(key, self.network.input_shape(h, w), self.input_kind, self.input_scale)

    def objective(self, x, problem) -> jax.Array:
        """The loss of the network output ``x`` (a hook: TV-DIP adds its regulariser)."""
        return mean_squared_residual(problem.operator, x, problem.y)

    def input_noise(self, step) -> jax.Array:
        """σ_p at ``step`` (0-based), with the optional stepwise decay."""
        if not self.input_noise_decay_every:
            return jnp.asarray(self.input_noise_std, jnp.float32)
        return self.input_noise_std * self.input_noise_decay ** (step // self.input_noise_decay_every)

    def init(self, key, problem) -> DIPState:
        self.network.check_size(*problem.image_shape[:2])
        k_net, k_z = jax.random.split(key)
        z = self.make_input(k_z, problem)
        params, out = init_network(self.network, k_net, z, problem)
        return DIPState(params, self.optimizer.init(params), z, out, out, jnp.zeros((), jnp.int32))

    def step(self, state: DIPState, problem, key):
        noise = jax.random.normal(key, state.z.shape, state.z.dtype)
        z_in = state.z + (self.input_noise(state.step) * noise).astype(state.z.dtype)

        def loss_fn(params):
            out = self.network.apply({"params": params}, z_in)
            return self.objective(out, problem), out

        params, opt_state, loss, out = fitting_step(self.optimizer, loss_fn, state.params, state.opt_state)
        out_avg = ema(state.out_avg, out, self.output_ema)
        return DIPState(params, opt_state, state.z, out, out_avg, state.step + 1), {"loss": loss}

    def estimate(self, state: DIPState, problem) -> jax.Array:
        return state.out_avg


def dip_network(image_shape, width: int = 128, scales: int = 5, **kwargs) -> nn.Module:
    """DIP's skip net (``get_net skip``: 5 scales × 128 channels, skip 4, bilinear, reflection, 32 input channels)."""
    return skip_net(out_channels=image_shape[-1], width=width, scales=scales, **kwargs)


#: DIP's published defaults (METHODS.md §0.2; DmitryUlyanov/deep-image-prior notebooks at 042e0d4).
PRESETS = (
    preset(None, "DIP: Adam lr 0.01, input 32 ch 0.1·U[0, 1); no published budget for this task, so the "
           "denoising values (denoising.ipynb cell 8)", steps=3000, input_noise_std=1 / 30),
    preset("denoise", "denoising.ipynb cell 8: 3000 iterations, reg_noise_std 1/30 at σ = 25", steps=3000,
           input_noise_std=1 / 30),
    preset("denoise", "denoising.ipynb: reg_noise_std 1/20 for σ = 50", when=lambda c: c.sigma >= 50,
           input_noise_std=1 / 20),
    preset("sr", "super-resolution.ipynb cell 7: ×4 2000 iterations, reg_noise_std 0.03", steps=2000,
           input_noise_std=0.03),
    preset("sr", "super-resolution.ipynb cell 7: ×8 4000 iterations, reg_noise_std 0.05",
           when=lambda c: c.factor >= 8, steps=4000, input_noise_std=0.05),
    preset("inpaint", "inpainting.ipynb cell 14: 5001 iterations (5001–6001 by image), reg_noise_std 0.03",
           steps=5001, input_noise_std=0.03),
    preset("mri", "survey Fig. 1: vanilla DIP on 4× multi-coil MRI for 5000 iterations (no DIP notebook for MRI; "
           "σ_p as for denoising)", steps=5000),
)

#: Hyper-parameters of the DIP family a user sets from the command line.
LR = Option("lr", "lr", "Adam learning rate")
INPUT_NOISE = Option("input-noise", "input_noise_std", "input perturbation std σ_p")
EMA = Option("ema", "output_ema", "exponential average of the outputs, e.g. 0.99 (0: off)")

register_method(MethodSpec("dip", "DIP", DIP, dip_network, PRESETS, (LR, INPUT_NOISE, EMA)))
