"""Optimal Eye Surgeon, OES (Ghosh, Zhang, Sun, Qu, Ravishankar, Wang, ICML 2024; survey eq. (17)).

Stage 1, :class:`OESMaskLearning` (mask learning at initialisation). The weights θ₀ stay at their random init; every
scalar parameter (conv weights and biases, batch-norm scales and biases) gets a logit p with keep-probability σ(p):

    min_p  mean |A f(z; θ₀ ⊙ m̃(p)) − y|² + κ Σ_i KL(Bern(σ(p_i)) ‖ Bern(ρ))

``m̃`` is a fresh relaxed Bernoulli (2-class Gumbel-softmax, temperature τ = 0.2) sample each step; its "keep" weight
is ``σ((p + L)/τ)`` with L ~ Logistic(0, 1), which is exactly the 2-class Gumbel-softmax with logits
``{log σ(p), log(1 − σ(p))}``. The KL is the closed-form Bernoulli KL (+10⁻⁶ inside the logs) summed over all
parameters, κ = 10⁻⁹, ρ = 0.05, p initialised to 0 (π = ½), Adam lr 0.01 (``quant.py``, ``config_mask.yaml`` of
Avra98/Optimal-Eye-Surgeon; the authors run 60,000 steps).

Binarisation, :func:`learned_mask`: global top-k over all logits with k = int(ρ · #params), ties broken at random, so
the mask keeps *exactly* k entries.

``prune="kernels"`` (not the authors' choice) masks only the convolution kernels and keeps every bias and batch-norm
affine dense, the usual scope of pruning-at-initialisation methods; ρ is then the kept fraction of kernel entries.
With every parameter in scope a mask learned for far fewer steps than the authors' 60,000 prunes most batch-norm
scales (their logits have not yet separated from the rest), which zeroes whole channels and leaves a network that
cannot learn: ``experiments/oes_mask_budget.py`` measures both.

Stage 2, :class:`OES` (sparse training). From the same θ₀ and z, pruned entries are zeroed and the subnetwork is
trained with Adam (lr 0.01; 40,000 steps upstream) on the mean squared error, gradients multiplied by the mask every
step so pruned entries stay exactly zero; no early stopping, the last iterate is the output. ``transfer=True``
trains the mask on another image from *fresh* random weights and the source's input z (``transfer.py``).
:class:`OESMask` saves to and loads from ``.npz``.

The network is DIP's inpainting hourglass without skips: ``down = up = (16, 32, 64, 128, 128, 128)``, down filter
5, up filter 3, no 1×1 up-convs, nearest upsampling, average-pool downsampling (:func:`oes_network`; 3,008,867
parameters for RGB).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import traverse_util

from dipjax.methods.base import StaticArray
from dipjax.methods.dip import check_output, init_network, mean_squared_residual, random_input
from dipjax.networks import SkipNet

#: The authors' step counts: mask learning and sparse training.
OES_MASK_STEPS = 60_000
OES_TRAIN_STEPS = 40_000


def oes_network(out_channels: int = 3, levels: int = 6, in_channels: int = 32) -> SkipNet:
    """OES's hourglass (no skips). ``levels < 6`` keeps the first widths, for images smaller than 128²."""
    widths = (16, 32, 64, 128, 128, 128)[:levels]
    return SkipNet(out_channels=out_channels, in_channels=in_channels, down=widths, up=widths,
                   skip=(0,) * levels, kernel_down=5, kernel_up=3, need1x1_up=False, upsample="nearest",
                   downsample="avg")


def bernoulli_kl(q, rho, eps: float = 1e-6):
    """``KL(Bern(q) ‖ Bern(ρ))`` elementwise, with OES's stabiliser inside the logs."""
    return q * jnp.log(q / rho + eps) + (1 - q) * jnp.log((1 - q) / (1 - rho) + eps)


PRUNE_SCOPES = ("all", "kernels")


def check_prune_scope(prune: str) -> None:
    if prune not in PRUNE_SCOPES:
        raise ValueError(f"unknown pruning scope {prune!r}; expected one of {', '.join(PRUNE_SCOPES)}")


def prunable(params, prune: str = "all"):
    """Per leaf of ``params``: is it masked? ``"all"``: every parameter (OES); ``"kernels"``: conv kernels only."""
    check_prune_scope(prune)
    return jax.tree_util.tree_map_with_path(
        lambda path, _: prune == "all" or getattr(path[-1], "key", None) == "kernel", params)


def relaxed_bernoulli(key, logits, temperature: float):
    """2-class Gumbel-softmax "keep" weight ``σ((p + L)/τ)``, L ~ Logistic(0, 1) (one draw per entry)."""
    return jax.nn.sigmoid((logits + jax.random.logistic(key, logits.shape)) / temperature)


class OESMaskState(NamedTuple):
    params0: Any  # frozen initial weights θ₀
    logits: Any  # one logit per parameter, the trainable leaves
    opt_state: Any
    z: jax.Array
    x: jax.Array  # output of the last relaxed-mask forward pass
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class OESMaskLearning:
    network: nn.Module = dataclasses.field(default_factory=oes_network)
    sparsity: float = 0.05  # ρ: the kept fraction
    kl_weight: float = 1e-9
    temperature: float = 0.2
    lr: float = 0.01
    prune: str = "all"  # "all" (the authors) | "kernels": biases and batch-norm affines stay dense
    name: str = "oes_mask"

    def __post_init__(self):
        if not 0 < self.sparsity < 1 or self.kl_weight < 0 or self.temperature <= 0 or self.lr <= 0:
            raise ValueError("OES needs 0 < sparsity < 1, kl_weight >= 0, temperature > 0 and lr > 0")
        check_prune_scope(self.prune)

    def init(self, key, problem) -> OESMaskState:
        params0, z, x = init_network(self.network, key, problem)
        logits = jax.tree_util.tree_map(jnp.zeros_like, params0)
        return OESMaskState(params0, logits, optax.adam(self.lr).init(logits), z, x, jnp.zeros((), jnp.int32))

    def step(self, state: OESMaskState, problem, key):
        leaves, treedef = jax.tree_util.tree_flatten(state.logits)
        keys = jax.tree_util.tree_unflatten(treedef, list(jax.random.split(key, len(leaves))))

        scope = prunable(state.logits, self.prune)

        def loss_fn(logits):
            masks = jax.tree_util.tree_map(
                lambda p, k, s: relaxed_bernoulli(k, p, self.temperature) if s else jnp.ones_like(p),
                logits, keys, scope)
            params = jax.tree_util.tree_map(jnp.multiply, state.params0, masks)
            x = self.network.apply({"params": params}, state.z)
            data = mean_squared_residual(problem.operator, x, problem.y)
            kl = sum(jnp.sum(bernoulli_kl(jax.nn.sigmoid(p), self.sparsity))
                     for p, s in zip(jax.tree_util.tree_leaves(logits), jax.tree_util.tree_leaves(scope)) if s)
            return data + self.kl_weight * kl, (x, data)

        (loss, (x, data)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.logits)
        updates, opt_state = optax.adam(self.lr).update(grads, state.opt_state, state.logits)
        logits = optax.apply_updates(state.logits, updates)
        return state._replace(logits=logits, opt_state=opt_state, x=x, step=state.step + 1), \
            {"loss": loss, "data_loss": data}

    def estimate(self, state: OESMaskState, problem) -> jax.Array:
        return state.x


class OESMask(StaticArray):
    """A binary mask over every parameter (a pytree of bools shaped like the params), with the initial weights θ₀
    and input z it was learned for. Hashable by content, so :class:`OES` can hold it as configuration."""

    def __init__(self, mask, params0=None, z=None):
        value = {"mask": jax.tree_util.tree_map(lambda m: np.asarray(m, bool), mask)}
        if params0 is not None:
            value["params0"] = params0
        if z is not None:
            value["z"] = z
        super().__init__(value)

    @property
    def mask(self):
        return self.value["mask"]

    @property
    def params0(self):
        return self.value.get("params0")

    @property
    def z(self):
        return self.value.get("z")

    @property
    def density(self) -> float:
        leaves = jax.tree_util.tree_leaves(self.mask)
        return float(sum(m.sum() for m in leaves) / sum(m.size for m in leaves))

    def save(self, path: str, overwrite: bool = False) -> None:
        """Write an ``.npz`` (keys ``mask/<module>/<param>``, ``params0/...``, ``z``); refuses to overwrite."""
        import os

        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        flat = {}
        for group, tree in self.value.items():
            if group == "z":
                flat["z"] = tree
            else:
                flat.update({"/".join((group,) + k): v for k, v in traverse_util.flatten_dict(tree).items()})
        with open(path, "wb") as f:
            np.savez(f, **flat)

    @classmethod
    def load(cls, path: str) -> "OESMask":
        try:
            with np.load(path) as data:
                groups: dict = {}
                for key in data.files:
                    if key == "z":
                        groups["z"] = data[key]
                        continue
                    group, *rest = key.split("/")
                    groups.setdefault(group, {})[tuple(rest)] = data[key]
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read an OES mask from {path!r}: {exc}") from None
        if "mask" not in groups:
            raise ValueError(f"{path!r} holds no OES mask (no 'mask/...' arrays)")
        unflat = {k: traverse_util.unflatten_dict(v) for k, v in groups.items() if k != "z"}
        return cls(unflat["mask"], unflat.get("params0"), groups.get("z"))


def learned_mask(state: OESMaskState, sparsity: float, key, prune: str = "all") -> OESMask:
    """Binarise stage 1's logits: of the parameters in the pruning scope (:func:`prunable`), keep exactly
    ``int(sparsity · #in scope)`` entries with the largest logits (global top-k), ties broken at random
    (``make_mask_with_sparsity`` of the authors); parameters outside the scope are kept."""
    leaves, treedef = jax.tree_util.tree_flatten(state.logits)
    scope = jax.tree_util.tree_leaves(prunable(state.logits, prune))
    flat = np.concatenate([np.asarray(p, np.float64).ravel() for p, s in zip(leaves, scope) if s])
    k = int(sparsity * flat.size)
    if k < 1:
        raise ValueError(f"sparsity {sparsity} keeps no parameter of {flat.size}")
    tie_break = np.asarray(jax.random.uniform(key, flat.shape))
    keep = np.zeros(flat.size, bool)
    keep[np.lexsort((tie_break, flat))[-k:]] = True
    masks, start = [], 0
    for p, s in zip(leaves, scope):
        if not s:
            masks.append(np.ones(p.shape, bool))
            continue
        masks.append(keep[start:start + p.size].reshape(p.shape))
        start += p.size
    to_np = lambda t: jax.tree_util.tree_map(np.asarray, t)  # noqa: E731
    return OESMask(jax.tree_util.tree_unflatten(treedef, masks), to_np(state.params0), np.asarray(state.z))


class OESState(NamedTuple):
    params: Any
    mask: Any  # float 0/1, shaped like params
    opt_state: Any
    z: jax.Array
    x: jax.Array
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class OES:
    """Stage 2: train the masked subnetwork. ``transfer=False`` starts from the mask's θ₀ and z (same image);
    ``transfer=True`` from fresh random weights (drawn from the init key) and the mask's z (another image)."""

    network: nn.Module = dataclasses.field(default_factory=oes_network)
    mask: OESMask | None = None
    lr: float = 0.01
    transfer: bool = False
    name: str = "oes"

    def __post_init__(self):
        if not isinstance(self.mask, OESMask):
            raise ValueError("OES needs mask=OESMask (from learned_mask or OESMask.load)")
        if self.lr <= 0:
            raise ValueError("OES needs lr > 0")

    def init(self, key, problem) -> OESState:
        h, w, _ = problem.image_shape
        self.network.check_size(h, w)
        k_net, k_z = jax.random.split(key)
        z = (jnp.asarray(self.mask.z) if self.mask.z is not None
             else random_input(k_z, self.network.input_shape(h, w)))
        if self.transfer or self.mask.params0 is None:
            params = self.network.init(k_net, z)["params"]
        else:
            params = jax.tree_util.tree_map(jnp.asarray, self.mask.params0)
        if jax.tree_util.tree_structure(params) != jax.tree_util.tree_structure(self.mask.mask):
            raise ValueError("the OES mask does not match the network's parameters")
        mask = jax.tree_util.tree_map(lambda m: jnp.asarray(m, jnp.float32), self.mask.mask)
        params = jax.tree_util.tree_map(jnp.multiply, params, mask)
        x = self.network.apply({"params": params}, z)
        check_output(x, problem)
        return OESState(params, mask, optax.adam(self.lr).init(params), z, x, jnp.zeros((), jnp.int32))

    def step(self, state: OESState, problem, key):
        def loss_fn(params):
            x = self.network.apply({"params": params}, state.z)
            return mean_squared_residual(problem.operator, x, problem.y), x

        (loss, x), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        grads = jax.tree_util.tree_map(jnp.multiply, grads, state.mask)
        updates, opt_state = optax.adam(self.lr).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return state._replace(params=params, opt_state=opt_state, x=x, step=state.step + 1), {"loss": loss}

    def estimate(self, state: OESState, problem) -> jax.Array:
        return state.x
