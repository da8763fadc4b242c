"""Double Over-Parameterisation, DOP (You, Zhu, Qu, Ma, NeurIPS 2020; survey eq. (18)):

    y = A x + s,   x = f_θ(z + δ),   s = g ⊙ g − h ⊙ h
    min_{θ, g, h}  mean |A f_θ(z + δ) + g ⊙ g − h ⊙ h − y|²

The sparse corruption (salt-and-pepper) is over-parameterised as a difference of squares and fitted together with
the image, with no ℓ1 penalty and no early stopping: small initialisation of (g, h) and *discrepant learning rates*
(θ at η, (g, h) at α·η) make gradient descent's implicit bias select a sparse s (the convex counterpart weights ‖s‖₁
by λ ≈ 1/α; see :mod:`dipjax.theory.burer_monteiro`). Defaults from ``denoising.py`` of ChongYou/robust-image-recovery:
plain SGD, η = 1 on the mean-reduced loss, α = 500, g, h ~ 10⁻⁵ N(0, 1), the DIP skip net with σ_p = 1/30, 150,000
iterations; ``loss="l1"`` is the repository's ℓ1 option. The output is the network's image at the last iteration.

Scale note: with the mean-reduced loss, the per-entry gradient of g and h shrinks as 1/(number of entries) while the
network's does not, so α = 500 lets s grow faster, relative to the image, on small images than on the authors' 512²
ones (the fields let a user rescale ``lr_ratio``).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from dipjax.methods import dip
from dipjax.methods.base import fitting_step, init_random_input
from dipjax.methods.registry import MethodSpec, Option, preset, register_method
from dipjax.networks import skip_net
from dipjax.regularizers import residual_norm
from dipjax.validation import require, require_finite


class DOPState(NamedTuple):
    params: Any
    g: jax.Array
    h: jax.Array
    opt_state: Any
    z: jax.Array
    out: jax.Array  # network output of the last step
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class DOP:
    network: nn.Module = dataclasses.field(default_factory=skip_net)
    lr: float = 1.0
    lr_ratio: float = 500.0
    optimizer_kind: str = "sgd"  # or "adam"
    init_scale: float = 1e-5
    input_noise_std: float = 1.0 / 30.0
    loss: str = "l2sq"  # or "l1"
    name: str = "dop"

    def __post_init__(self):
        require_finite(self, "lr", "lr_ratio", "init_scale", "input_noise_std")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(self.lr_ratio > 0, "lr_ratio", f"must be positive, got {self.lr_ratio}")
        require(self.init_scale >= 0, "init_scale", f"must be non-negative, got {self.init_scale}")
        require(self.input_noise_std >= 0, "input_noise_std", f"must be non-negative, got {self.input_noise_std}")
        require(self.optimizer_kind in ("sgd", "adam"), "optimizer_kind",
                f"must be 'sgd' or 'adam', got {self.optimizer_kind!r}")
        require(self.loss in ("l2sq", "l1"), "loss", f"must be 'l2sq' or 'l1', got {self.loss!r}")

    @functools.cached_property
    def optimizer(self):
        make = optax.sgd if self.optimizer_kind == "sgd" else optax.adam
        return optax.multi_transform({"net": make(self.lr), "sparse": make(self.lr * self.lr_ratio)},
                                     {"params": "net", "g": "sparse", "h": "sparse"})

    def init(self, key, problem) -> DOPState:
        k_net, k_g, k_h = jax.random.split(key, 3)
        params, z, out = init_random_input(self.network, k_net, problem)
        g = self.init_scale * jax.random.normal(k_g, problem.y.shape)
        hh = self.init_scale * jax.random.normal(k_h, problem.y.shape)
        opt_state = self.optimizer.init({"params": params, "g": g, "h": hh})
        return DOPState(params, g, hh, opt_state, z, out, jnp.zeros((), jnp.int32))

    def step(self, state: DOPState, problem, key):
        z_in = state.z + self.input_noise_std * jax.random.normal(key, state.z.shape)

        def loss_fn(v):
            out = self.network.apply({"params": v["params"]}, z_in)
            r = problem.operator(out) + v["g"] ** 2 - v["h"] ** 2 - problem.y
            return residual_norm(r, self.loss), out

        v, opt_state, loss, out = fitting_step(self.optimizer, loss_fn,
                                               {"params": state.params, "g": state.g, "h": state.h}, state.opt_state)
        return DOPState(v["params"], v["g"], v["h"], opt_state, state.z, out, state.step + 1), {"loss": loss}

    def estimate(self, state: DOPState, problem) -> jax.Array:
        return state.out

    @staticmethod
    def sparse_component(state: DOPState) -> jax.Array:
        """The fitted corruption ``s = g ⊙ g − h ⊙ h``."""
        return state.g**2 - state.h**2


register_method(MethodSpec("dop", "DOP", DOP, dip.dip_network, (
    preset(None, "ChongYou/robust-image-recovery denoising.py:24-29, 48, 61-121 (5bb2314): 150,000 SGD steps, "
           "η = 1, α = 500, σ_p = 1/30, g, h ~ 1e-5 N(0, 1)", steps=150_000),
), (dip.LR, dip.INPUT_NOISE, Option("lr-ratio", "lr_ratio", "ratio α of the sparse term's learning rate to η"))))
