"""Deep Random Projector, DRP (Li, Wang, Zhuang, Sun, CVPR 2023; survey eq. (20)):

    min_{z, γ, β}  sqrt(mean |A G_{W₀, γ, β}(BN_in(z)) − y|²) + λ_TV TV₁(G(BN_in(z)))

Every convolution weight and bias stays at its random initialisation W₀; only the batch-norm affines (γ, β) of the
network, an extra affine batch norm on the input, and the input seed z are trained (Adam, one learning rate; three
Adams with equal hyper-parameters are one Adam, coordinate-wise). The network is the DIP skip net cut to **one**
scale; the data term is the RMSE and TV₁ the anisotropic TV divided by the number of entries (``util.py``,
``train_*.py`` of sun-umn/Deep-Random-Projector). No input perturbation.

Per-task defaults (``Main_Start.py``) via :meth:`DRP.for_task`: denoising width 64, skip 4, z = 0.1·N(0, 1) with
3 channels, lr 0.1, λ_TV 0.45, 5000 iterations; super-resolution width 128, 1-channel z, lr 0.5, λ_TV 0.75;
inpainting width 128, skip 128, a learnable 2-channel meshgrid z, lr 0.05, λ_TV 0.01. Not implemented: the
inpainting script's per-iteration N(0, 10⁻⁶) jitter of the frozen weights.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import traverse_util

from dipjax.methods.dip import check_output, random_input
from dipjax.networks import skip_net
from dipjax.networks.layers import batch_norm_1image
from dipjax.regularizers import residual_norm, total_variation

#: The authors' iteration count for every task.
DRP_STEPS = 5000


def split_batchnorm(params) -> tuple[dict, dict]:
    """Split Flax params into (batch-norm affines, everything else): a module is a batch norm if it has ``scale``."""
    flat = traverse_util.flatten_dict(params)
    bn_modules = {k[:-1] for k in flat if k[-1] == "scale"}
    bn = {k: v for k, v in flat.items() if k[:-1] in bn_modules}
    rest = {k: v for k, v in flat.items() if k[:-1] not in bn_modules}
    return traverse_util.unflatten_dict(bn), traverse_util.unflatten_dict(rest)


def merge_params(a, b) -> dict:
    return traverse_util.unflatten_dict({**traverse_util.flatten_dict(a), **traverse_util.flatten_dict(b)})


class DRPState(NamedTuple):
    frozen: Any  # convolution weights and biases at initialisation (never updated)
    trainable: Any  # {"bn": network BN affines, "bn_in": input BN affine, "z": input seed}
    opt_state: Any
    x: jax.Array
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class DRP:
    network: nn.Module = dataclasses.field(
        default_factory=lambda: skip_net(width=64, scales=1, skip_channels=4, in_channels=3))
    lr: float = 0.1
    tv_weight: float = 0.45
    input_kind: str = "normal"  # "normal": input_scale·N(0, 1); "uniform": input_scale·U[0, 1); "meshgrid"
    input_scale: float = 0.1
    name: str = "drp"

    def __post_init__(self):
        if self.lr <= 0 or self.tv_weight < 0 or self.input_kind not in ("normal", "uniform", "meshgrid"):
            raise ValueError("DRP needs lr > 0, tv_weight >= 0 and input_kind in normal, uniform, meshgrid")

    @classmethod
    def for_task(cls, task: str, channels: int, **overrides) -> "DRP":
        """The authors' per-task configuration (``task`` as in :data:`dipjax.tasks.TASKS`)."""
        if task == "sr":
            cfg: dict = dict(network=skip_net(out_channels=channels, width=128, scales=1, in_channels=1),
                             lr=0.5, tv_weight=0.75)
        elif task == "inpaint":
            cfg = dict(network=skip_net(out_channels=channels, width=128, scales=1, skip_channels=128,
                                        in_channels=2), lr=0.05, tv_weight=0.01, input_kind="meshgrid")
        else:
            cfg = dict(network=skip_net(out_channels=channels, width=64, scales=1, in_channels=3))
        cfg.update(overrides)
        return cls(**cfg)

    def _input(self, key, shape):
        if self.input_kind == "normal":
            return self.input_scale * jax.random.normal(key, shape)
        return random_input(key, shape, "noise" if self.input_kind == "uniform" else "meshgrid", self.input_scale)

    def forward(self, frozen, trainable):
        t = trainable
        z = batch_norm_1image(t["z"], t["bn_in"]["scale"], t["bn_in"]["bias"])
        return self.network.apply({"params": merge_params(frozen, t["bn"])}, z)

    def init(self, key, problem) -> DRPState:
        h, w, _ = problem.image_shape
        self.network.check_size(h, w)
        k_net, k_z = jax.random.split(key)
        z = self._input(k_z, self.network.input_shape(h, w))
        bn, frozen = split_batchnorm(self.network.init(k_net, z)["params"])
        c_in = z.shape[-1]
        trainable = {"bn": bn, "bn_in": {"scale": jnp.ones(c_in), "bias": jnp.zeros(c_in)}, "z": z}
        x = self.forward(frozen, trainable)
        check_output(x, problem)
        return DRPState(frozen, trainable, optax.adam(self.lr).init(trainable), x, jnp.zeros((), jnp.int32))

    def step(self, state: DRPState, problem, key):
        def loss_fn(trainable):
            x = self.forward(state.frozen, trainable)
            data = residual_norm(problem.operator(x) - problem.y, "l2")
            return data + self.tv_weight * total_variation(x, "anisotropic"), (x, data)

        (loss, (x, data)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.trainable)
        updates, opt_state = optax.adam(self.lr).update(grads, state.opt_state, state.trainable)
        trainable = optax.apply_updates(state.trainable, updates)
        return DRPState(state.frozen, trainable, opt_state, x, state.step + 1), {"loss": loss, "data_loss": data}

    def estimate(self, state: DRPState, problem) -> jax.Array:
        return state.x
