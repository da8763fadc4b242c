"""Deep Random Projector, DRP (Li, Wang, Zhuang, Sun, CVPR 2023; survey eq. (20)):

    min_{z, γ, β}  sqrt(mean |A G_{W₀, γ, β}(BN_in(z)) − y|²) + λ_TV TV₁(G(BN_in(z)))

Every convolution weight and bias stays at its random initialisation W₀; only the batch-norm affines (γ, β) of the
network, an extra affine batch norm on the input, and the input seed z are trained (Adam, one learning rate; three
Adams with equal hyper-parameters are one Adam, coordinate-wise). The network is the DIP skip net cut to **one**
scale; the data term is the RMSE and TV₁ the anisotropic TV divided by the number of entries (``util.py``,
``train_*.py`` of sun-umn/Deep-Random-Projector). No input perturbation.

Per-task defaults (``Main_Start.py``) in :data:`PRESETS`: denoising width 64, skip 4, z = 0.1·N(0, 1) with
3 channels, lr 0.1, λ_TV 0.45, 5000 iterations; super-resolution width 128, 1-channel z, lr 0.5, λ_TV 0.75;
inpainting width 128, skip 128, a learnable 2-channel meshgrid z, lr 0.05, λ_TV 0.01. Not implemented: the
inpainting script's per-iteration N(0, 10⁻⁶) jitter of the frozen weights.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import traverse_util

from dipjax.methods.base import check_output, fitting_step, random_input
from dipjax.methods.registry import MethodSpec, Option, preset, register_method
from dipjax.networks import init_params, skip_net
from dipjax.networks.layers import batch_norm_1image
from dipjax.regularizers import residual_norm, total_variation
from dipjax.validation import require, require_finite


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
    out: jax.Array
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
        require_finite(self, "lr", "tv_weight", "input_scale")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(self.tv_weight >= 0, "tv_weight", f"must be non-negative, got {self.tv_weight}")
        require(self.input_kind in ("normal", "uniform", "meshgrid"), "input_kind",
                f"must be normal, uniform or meshgrid, got {self.input_kind!r}")

    @functools.cached_property
    def optimizer(self):
        return optax.adam(self.lr)

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
        bn, frozen = split_batchnorm(init_params(self.network, k_net, z)["params"])
        c_in = z.shape[-1]
        trainable = {"bn": bn, "bn_in": {"scale": jnp.ones(c_in), "bias": jnp.zeros(c_in)}, "z": z}
        out = self.forward(frozen, trainable)
        check_output(out, problem)
        return DRPState(frozen, trainable, self.optimizer.init(trainable), out, jnp.zeros((), jnp.int32))

    def step(self, state: DRPState, problem, key):
        def loss_fn(trainable):
            x = self.forward(state.frozen, trainable)
            data = residual_norm(problem.operator(x) - problem.y, "l2")
            return data + self.tv_weight * total_variation(x, "anisotropic"), (x, data)

        trainable, opt_state, loss, (out, data) = fitting_step(self.optimizer, loss_fn, state.trainable,
                                                                state.opt_state)
        return DRPState(state.frozen, trainable, opt_state, out, state.step + 1), {"loss": loss, "data_loss": data}

    def estimate(self, state: DRPState, problem) -> jax.Array:
        return state.out


def drp_network(image_shape, width: int = 64, scales: int = 1, **kwargs) -> nn.Module:
    """DRP's reduced-depth skip net: ``scales`` levels (1) of ``width`` channels."""
    return skip_net(out_channels=image_shape[-1], width=width, scales=scales, **kwargs)


#: sun-umn/Deep-Random-Projector (cdddfb1; METHODS.md §7): 5000 iterations for every task.
PRESETS = (
    preset(None, "1_Denoising/Main_Start.py:28-39: width 64, skip 4, z 3 ch 0.1·N(0, 1), lr 0.1, λ_TV 0.45",
           steps=5000, lr=0.1, tv_weight=0.45, input_kind="normal", network=dict(width=64, in_channels=3)),
    preset("sr", "2_Super_Resolution/Main_Start.py:38-43, 93-94: width 128, z 1 ch, lr 0.5, λ_TV 0.75",
           lr=0.5, tv_weight=0.75, network=dict(width=128, in_channels=1)),
    preset("inpaint", "3_Inpainting/Main_Start.py:32-43, train_ip.py:44-49: width 128, skip 128, learnable "
           "2-channel meshgrid z, lr 0.05, λ_TV 0.01 (the weight jitter 1e-3 is not applied)", lr=0.05,
           tv_weight=0.01, input_kind="meshgrid", network=dict(width=128, skip_channels=128, in_channels=2)),
)

register_method(MethodSpec("drp", "DRP", DRP, drp_network, PRESETS, (
    Option("lr", "lr", "Adam learning rate (batch-norm affines, input batch norm and input)"),
    Option("tv-weight", "tv_weight", "weight λ of the total-variation penalty"))))
