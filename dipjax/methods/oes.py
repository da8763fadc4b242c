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
trained with Adam (lr 0.01; 40,000 steps upstream) on the mean squared error of the network with weights
``θ ⊙ m``, so the gradient of every pruned entry is exactly zero (the authors multiply the gradients by the mask) and
pruned entries stay zero; no early stopping, the last iterate is the output. ``transfer=True``
trains the mask on another image from *fresh* random weights and the source's input z (``transfer.py``).
:class:`OESMask` saves to and loads from ``.npz``.

The network is DIP's inpainting hourglass without skips: ``down = up = (16, 32, 64, 128, 128, 128)``, down filter
5, up filter 3, no 1×1 up-convs, nearest upsampling, average-pool downsampling (:func:`oes_network`; 3,008,867
parameters for RGB).

:class:`OptimalEyeSurgeon` is the two stages as one method (``--method oes``): ``reconstruct`` runs its
:meth:`~OptimalEyeSurgeon.run` pipeline, mask learning for ``mask_steps`` then ``steps`` of sparse training, per
image, and returns the masks beside the result. With ``mask=`` a saved mask it skips stage 1 and transfers it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import traverse_util

from dipjax.methods.base import (StaticArray, check_output, fitting_step, init_random_input, mean_squared_residual,
                                 random_input)
from dipjax.methods.registry import MethodSpec, Option, preset, register_method
from dipjax.networks import SkipNet, init_params
from dipjax.validation import require, require_finite


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
    require(prune in PRUNE_SCOPES, "prune", f"is an unknown pruning scope {prune!r}; expected one of "
            f"{', '.join(PRUNE_SCOPES)}")


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
    out: jax.Array  # output of the last relaxed-mask forward pass
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
        check_mask_settings(self.sparsity, self.kl_weight, self.temperature, self.lr, self.prune)

    @functools.cached_property
    def optimizer(self):
        return optax.adam(self.lr)

    def init(self, key, problem) -> OESMaskState:
        params0, z, out = init_random_input(self.network, key, problem)
        logits = jax.tree_util.tree_map(jnp.zeros_like, params0)
        return OESMaskState(params0, logits, self.optimizer.init(logits), z, out, jnp.zeros((), jnp.int32))

    def step(self, state: OESMaskState, problem, key):
        leaves, treedef = jax.tree_util.tree_flatten(state.logits)
        keys = jax.tree_util.tree_unflatten(treedef, list(jax.random.split(key, len(leaves))))
        scope = prunable(state.logits, self.prune)

        def loss_fn(logits):
            masks = jax.tree_util.tree_map(
                lambda p, k, s: relaxed_bernoulli(k, p, self.temperature) if s else jnp.ones_like(p),
                logits, keys, scope)
            params = jax.tree_util.tree_map(jnp.multiply, state.params0, masks)
            out = self.network.apply({"params": params}, state.z)
            data = mean_squared_residual(problem.operator, out, problem.y)
            kl = sum(jnp.sum(bernoulli_kl(jax.nn.sigmoid(p), self.sparsity))
                     for p, s in zip(jax.tree_util.tree_leaves(logits), jax.tree_util.tree_leaves(scope)) if s)
            return data + self.kl_weight * kl, (out, data)

        logits, opt_state, loss, (out, data) = fitting_step(self.optimizer, loss_fn, state.logits, state.opt_state)
        return state._replace(logits=logits, opt_state=opt_state, out=out, step=state.step + 1), \
            {"loss": loss, "data_loss": data}

    def estimate(self, state: OESMaskState, problem) -> jax.Array:
        return state.out


def check_mask_settings(sparsity, kl_weight, temperature, lr, prune) -> None:
    """The one check of OES's mask-learning settings (stage 1 and the pipeline)."""
    for name, v in (("sparsity", sparsity), ("kl_weight", kl_weight), ("temperature", temperature), ("lr", lr)):
        require(np.isfinite(v), name, f"must be a finite number, got {v}")
    require(0 < sparsity < 1, "sparsity", f"must be in (0, 1), got {sparsity}")
    require(kl_weight >= 0, "kl_weight", f"must be non-negative, got {kl_weight}")
    require(temperature > 0, "temperature", f"must be positive, got {temperature}")
    require(lr > 0, "lr", f"must be positive, got {lr}")
    check_prune_scope(prune)


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
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        flat = {}
        for group, tree in self.value.items():
            if group == "z":
                flat["z"] = tree
            else:
                flat.update({"/".join((group,) + k): v for k, v in traverse_util.flatten_dict(tree).items()})
        from dipjax.files import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
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
    out: jax.Array
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
        require_finite(self, "lr")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")

    @functools.cached_property
    def optimizer(self):
        return optax.adam(self.lr)

    def init(self, key, problem) -> OESState:
        h, w, _ = problem.image_shape
        self.network.check_size(h, w)
        k_net, k_z = jax.random.split(key)
        z = (jnp.asarray(self.mask.z) if self.mask.z is not None
             else random_input(k_z, self.network.input_shape(h, w)))
        if self.transfer or self.mask.params0 is None:
            params = init_params(self.network, k_net, z)["params"]
        else:
            params = jax.tree_util.tree_map(jnp.asarray, self.mask.params0)
        if jax.tree_util.tree_structure(params) != jax.tree_util.tree_structure(self.mask.mask):
            raise ValueError("the OES mask does not match the network's parameters")
        mask = jax.tree_util.tree_map(lambda m: jnp.asarray(m, jnp.float32), self.mask.mask)
        params = jax.tree_util.tree_map(jnp.multiply, params, mask)
        out = self.network.apply({"params": params}, z)
        check_output(out, problem)
        return OESState(params, mask, self.optimizer.init(params), z, out, jnp.zeros((), jnp.int32))

    def step(self, state: OESState, problem, key):
        def loss_fn(params):
            out = self.network.apply({"params": jax.tree_util.tree_map(jnp.multiply, params, state.mask)}, state.z)
            return mean_squared_residual(problem.operator, out, problem.y), out

        params, opt_state, loss, out = fitting_step(self.optimizer, loss_fn, state.params, state.opt_state)
        return state._replace(params=params, opt_state=opt_state, out=out, step=state.step + 1), {"loss": loss}

    def estimate(self, state: OESState, problem) -> jax.Array:
        return state.out


@dataclasses.dataclass(frozen=True)
class OptimalEyeSurgeon:
    """Both OES stages as one method: ``reconstruct(OptimalEyeSurgeon(...), problem, key, steps)`` learns a mask for
    ``mask_steps`` (:class:`OESMaskLearning` with ``sparsity``, ``prune``, ``mask_lr``, ``kl_weight``,
    ``temperature``), binarises it (:func:`learned_mask`) and trains the sparse network for ``steps``
    (:class:`OES`, lr ``lr``). Given ``mask`` (an :class:`OESMask`, e.g. ``OESMask.load(path)``), stage 1 is
    skipped and the mask is transferred to fresh weights. A batch runs image by image (each learns its own mask);
    the result's ``extras`` hold ``masks`` (one per image), ``mask_results`` and ``mask_steps``."""

    network: nn.Module = dataclasses.field(default_factory=oes_network)
    sparsity: float = 0.05
    prune: str = "all"
    mask_lr: float = 0.01
    kl_weight: float = 1e-9
    temperature: float = 0.2
    mask_steps: int = 60_000
    lr: float = 0.01
    mask: OESMask | None = None
    name: str = "oes"

    def __post_init__(self):
        check_mask_settings(self.sparsity, self.kl_weight, self.temperature, self.mask_lr, self.prune)
        require(self.mask_steps >= 1, "mask_steps", f"must be a positive integer, got {self.mask_steps}")
        require_finite(self, "lr")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(self.mask is None or isinstance(self.mask, OESMask), "mask", "must be an OESMask")

    @property
    def stage1(self) -> OESMaskLearning:
        return OESMaskLearning(network=self.network, sparsity=self.sparsity, kl_weight=self.kl_weight,
                               temperature=self.temperature, lr=self.mask_lr, prune=self.prune)

    def run(self, problem, key, steps: int, *, stopper=None, independent_keys: bool = False, desc=None,
            checkpoint: str | None = None, checkpoint_every: int = 0, resume: bool = False, **engine_options):
        """Run both stages on ``problem`` (one or a batch); ``engine_options`` go to every
        :func:`~dipjax.engine.reconstruct` call.

        With ``checkpoint`` (a file path) every stage of every image checkpoints beside it
        (:func:`stage_files`): the engine's checkpoint of the stage (every ``checkpoint_every`` steps and when a signal
        ends it, kept at the end of a finished stage) and the learned mask. A signal (``interruptible=True``) ends
        the pipeline at the next step boundary with :class:`~dipjax.engine.PipelineInterrupted`; ``resume=True``
        skips the finished stages (their checkpoints give back their results) and resumes the interrupted one, so
        the results are bit for bit those of the uninterrupted run. The files are removed once every image is
        done."""
        from dipjax.engine import PipelineInterrupted, reconstruct, stack_results

        if stopper is not None:
            raise ValueError("early stopping does not apply to oes, which trains a sparse network to the end")
        batched = problem.batch_size is not None
        problems = [problem[i] for i in range(problem.batch_size)] if batched else [problem]
        results, masks, mask_results = [], [], []

        def stage(method, p, k, n, label, ckpt):
            saved = ckpt is not None and os.path.exists(ckpt)
            r = reconstruct(method, p, k, n, desc=label, checkpoint=ckpt, checkpoint_every=checkpoint_every,
                            resume=resume and saved, keep_checkpoint=ckpt is not None, **engine_options)
            if r.interrupted:
                raise PipelineInterrupted(r.interrupted, f"{label} at iteration {r.steps} of {n}")
            return r

        for i, p in enumerate(problems):
            k = jax.random.fold_in(key, i) if independent_keys else key
            files = stage_files(checkpoint, i) if checkpoint is not None else {}
            if self.mask is None:
                if resume and files and os.path.exists(files["mask"]):
                    mask = OESMask.load(files["mask"])  # stage 1 finished before the interruption
                else:
                    r1 = stage(self.stage1, p, k, self.mask_steps, f"{desc or 'oes'} mask (image {i + 1})",
                               files.get("mask_run"))
                    mask = learned_mask(r1.state, self.sparsity, jax.random.fold_in(k, 1), self.prune)
                    mask_results.append(r1)
                    if files:
                        mask.save(files["mask"], overwrite=True)
                sparse = OES(network=self.network, mask=mask, lr=self.lr)
            else:
                mask = self.mask
                sparse = OES(network=self.network, mask=mask, lr=self.lr, transfer=True)
            masks.append(mask)
            results.append(stage(sparse, p, k, steps, f"{desc or 'oes'} (image {i + 1})", files.get("fit_run")))
        for i in range(len(problems) if checkpoint is not None else 0):
            for path in stage_files(checkpoint, i).values():
                if os.path.exists(path):
                    os.remove(path)
        result = stack_results(results) if batched else results[0]
        result.extras.update(masks=masks, mask_results=mask_results,
                             mask_steps=self.mask_steps if self.mask is None else 0)
        return result


def stage_files(checkpoint: str, image: int) -> dict[str, str]:
    """The files :meth:`OptimalEyeSurgeon.run` keeps beside ``checkpoint`` for image ``image``: the mask stage's
    engine checkpoint, the learned mask, and the sparse training's engine checkpoint."""
    base = os.path.splitext(checkpoint)[0]
    return {"mask_run": f"{base}-oes{image}-mask-run.npz", "mask": f"{base}-oes{image}-mask.npz",
            "fit_run": f"{base}-oes{image}-fit-run.npz"}


def oes_network_for(image_shape, scales: int = 6, **kwargs) -> nn.Module:
    """OES's hourglass for the image's channels with ``scales`` levels (6; fewer for images below 128²)."""
    return oes_network(image_shape[-1], levels=scales).clone(**kwargs)


register_method(MethodSpec("oes", "OES", OptimalEyeSurgeon, oes_network_for, (
    preset(None, "Avra98/Optimal-Eye-Surgeon (d3dcc39) configs/config_mask.yaml, config_train_sparse.yaml: 60,000 "
           "mask steps (Adam 0.01, ρ = 0.05, κ = 1e-9, τ = 0.2), then 40,000 sparse-training steps (Adam 0.01)",
           steps=40_000, mask_steps=60_000),
), (Option("lr", "lr", "Adam learning rate of the sparse training"),
    Option("oes-mask-steps", "mask_steps", "mask-learning steps before sparse training"),
    Option("oes-mask-lr", "mask_lr", "Adam learning rate of mask learning"),
    Option("oes-sparsity", "sparsity", "kept fraction ρ of the parameters in the pruning scope"),
    Option("oes-prune", "prune", "what the mask covers: every parameter (the authors) or conv kernels only"),
    Option("oes-mask", "mask", "an .npz mask saved by an earlier run: skip mask learning and transfer it to fresh "
           "weights", convert=lambda path: OESMask.load(path)))))
