"""Self-Guided DIP (Liang, Bell, Qu, Wang, Ravishankar, IEEE TCI 2025; survey eq. (14)):

    min_{θ, z}  D(A E_η[f_θ(z + η)], y) + λ R(E_η[f_θ(z + η)], z),     x* = E_η[f_θ*(z* + η)]

The network and its input are optimised jointly (each with its own Adam, one step each per iteration); the
expectation over input perturbations is a Monte-Carlo average of ``n_realizations`` forward passes; the
self-guidance term pulls the averaged output back onto the input, so the network learns to denoise its own input.
Per iteration (METHODS.md §1): ``a = c · max(z)`` (z detached), ``η_j ~ a · U[0, 1)`` (uniform and non-negative, not
zero-mean), ``x̄ = mean_j f_θ(z + η_j)``, loss ``D(A x̄, y) + λ R(x̄, z)``, step both optimisers; the reported
image is an exponential moving average of ``x̄``.

Defaults follow the authors' demo notebook where it is readable (ℓ1 norms in its objective, λ = 2, lr_θ = 3e-4,
lr_z = 0.1, random ``U[0, 1)`` input of the image's shape) and their lab's later code otherwise (noise scale
c = 1/2, J = 3 realizations, EMA 0.95); all are fields. Norms are normalised by the number of entries
(:func:`dipjax.regularizers.residual_norm`), which for denoising equals the unnormalised form up to one constant.
``reg_form="per_realization"`` is the DIP-CT handbook's variant ``Σ_j R(f_θ(z + η_j), z)``. The network is the
shallow U-Net of the same lab (any image-to-image network works: input and output channels equal the image's).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from dipjax.methods.dip import check_output, ema
from dipjax.networks import shallow_unet
from dipjax.regularizers import NORMS, residual_norm


class SelfGuidedState(NamedTuple):
    params: Any
    z: jax.Array  # the trainable input, image-shaped
    opt_state: Any  # optax.multi_transform state over {"params", "z"}
    x: jax.Array  # x̄ of the last step
    x_avg: jax.Array  # its exponential moving average
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class SelfGuidedDIP:
    network: nn.Module = dataclasses.field(default_factory=shallow_unet)
    lr_theta: float = 3e-4
    lr_z: float = 0.1
    lam: float = 2.0
    noise_scale: float = 0.5
    n_realizations: int = 3
    norm: str = "l1"
    reg_form: str = "mean_output"  # or "per_realization"
    input_init: str = "random"  # or "adjoint" (A^T y, as reference-guided runs do)
    output_ema: float = 0.95
    name: str = "self_guided_dip"

    def __post_init__(self):
        if min(self.lr_theta, self.lr_z) <= 0 or self.lam < 0 or self.noise_scale < 0 or self.n_realizations < 1:
            raise ValueError("Self-Guided DIP needs positive learning rates, lam >= 0, noise_scale >= 0 and "
                             "n_realizations >= 1")
        if self.norm not in NORMS or self.reg_form not in ("mean_output", "per_realization"):
            raise ValueError(f"norm must be one of {NORMS} and reg_form 'mean_output' or 'per_realization'")
        if self.input_init not in ("random", "adjoint") or not 0 <= self.output_ema < 1:
            raise ValueError("input_init must be 'random' or 'adjoint' and 0 <= output_ema < 1")

    def optimizer(self):
        return optax.multi_transform({"params": optax.adam(self.lr_theta), "z": optax.adam(self.lr_z)},
                                     {"params": "params", "z": "z"})

    def init(self, key, problem) -> SelfGuidedState:
        h, w, c = problem.image_shape
        self.network.check_size(h, w)
        k_net, k_z = jax.random.split(key)
        if self.input_init == "random":
            z = jax.random.uniform(k_z, self.network.input_shape(h, w))
        else:
            z = problem.operator.adjoint(problem.y).astype(jnp.float32)
        params = self.network.init(k_net, z)["params"]
        x = self.network.apply({"params": params}, z)
        check_output(x, problem)
        if z.shape != x.shape:
            raise ValueError(f"Self-Guided DIP needs an image-shaped input; the network takes {z.shape} and "
                             f"returns {x.shape}")
        opt_state = self.optimizer().init({"params": params, "z": z})
        return SelfGuidedState(params, z, opt_state, x, x, jnp.zeros((), jnp.int32))

    def step(self, state: SelfGuidedState, problem, key):
        a = self.noise_scale * jax.lax.stop_gradient(jnp.max(state.z))
        eta = a * jax.random.uniform(key, (self.n_realizations,) + state.z.shape)

        def loss_fn(trainable):
            outs = self.network.apply({"params": trainable["params"]}, trainable["z"][None] + eta)
            x_bar = jnp.mean(outs, axis=0)
            data = residual_norm(problem.operator(x_bar) - problem.y, self.norm)
            if self.reg_form == "mean_output":
                reg = residual_norm(x_bar - trainable["z"], self.norm)
            else:
                reg = jnp.sum(jax.vmap(lambda o: residual_norm(o - trainable["z"], self.norm))(outs))
            return data + self.lam * reg, (x_bar, data)

        trainable = {"params": state.params, "z": state.z}
        (loss, (x_bar, data)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        updates, opt_state = self.optimizer().update(grads, state.opt_state, trainable)
        trainable = optax.apply_updates(trainable, updates)
        new = SelfGuidedState(trainable["params"], trainable["z"], opt_state, x_bar,
                              ema(state.x_avg, x_bar, self.output_ema), state.step + 1)
        return new, {"loss": loss, "data_loss": data}

    def estimate(self, state: SelfGuidedState, problem) -> jax.Array:
        return state.x_avg
