"""aSeqDIP, autoencoding sequential DIP (Alkhouri, Liang, Bell, Qu, Wang, Ravishankar, NeurIPS 2024; survey eq. (15)):

    z_0 = A^T y;   for k = 1..K:  θ_k = N Adam steps from θ_{k−1} on  D(A f_θ(z_{k−1}), y) + λ R(f_θ(z_{k−1}), z_{k−1})
                                 z_k = f_{θ_k}(z_{k−1})                      x* = z_K

The input starts at the adjoint (for denoising and inpainting: the degraded image itself), the network is never
re-initialised, there is no input perturbation, and ``steps`` of the engine count *network updates*: K = steps / N,
the same budget as vanilla DIP (the paper's protocol). ``z_update``: ``"last_forward"`` takes ``z_k`` from the last
inner forward pass, computed before the final optimiser step (the authors' denoising, deblurring and CT scripts);
``"recompute"`` evaluates the updated network (their inpainting script).

Diffusion-guided hook (uDiG-DIP): ``purifier(x, key) -> x`` is applied to every input update, ``z_k =
purifier(f_{θ_k}(z_{k−1}), key)``, so a user with a pre-trained diffusion model passes its purification (noise to a
level, then denoise) here. Any JAX function works; dipjax ships no weights and downloads nothing. The purifier runs
under ``stop_gradient`` and only at stage boundaries (``lax.cond``).

Per-task defaults (official scripts, METHODS.md §2) via :meth:`ASeqDIP.for_task`: denoising λ = 1, lr 1e-4, N = 2,
shallow U-Net with N(0, 0.02) init; inpainting lr 3e-4, ``recompute``, a 5-level skip net with nearest upsampling;
deblurring λ = 5. Mean-squared norms (the CT/MRI scripts' unsquared norms: ``norm="l2"``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from dipjax.methods.dip import check_output
from dipjax.networks import shallow_unet, skip_net
from dipjax.regularizers import NORMS, residual_norm


class ASeqDIPState(NamedTuple):
    params: Any
    opt_state: Any
    z: jax.Array  # the current stage's input z_{k−1}
    x: jax.Array  # the newest network output
    step: jax.Array  # network updates so far


@dataclasses.dataclass(frozen=True)
class ASeqDIP:
    network: nn.Module = dataclasses.field(default_factory=shallow_unet)
    lr: float = 1e-4
    lam: float = 1.0
    inner_steps: int = 2
    norm: str = "l2sq"
    z_update: str = "last_forward"  # or "recompute"
    purifier: Callable | None = None
    name: str = "aseq_dip"

    def __post_init__(self):
        if self.lr <= 0 or self.lam < 0 or self.inner_steps < 1 or self.norm not in NORMS:
            raise ValueError(f"aSeqDIP needs lr > 0, lam >= 0, inner_steps >= 1 and norm in {NORMS}")
        if self.z_update not in ("last_forward", "recompute"):
            raise ValueError(f"unknown z_update {self.z_update!r}; expected 'last_forward' or 'recompute'")

    @classmethod
    def for_task(cls, task: str, channels: int, **overrides) -> "ASeqDIP":
        """The authors' per-task configuration (``task`` as in :data:`dipjax.tasks.TASKS`)."""
        cfg: dict = dict(network=shallow_unet(in_channels=channels, out_channels=channels))
        if task == "inpaint":
            cfg.update(lr=3e-4, z_update="recompute",
                       network=skip_net(out_channels=channels, in_channels=channels, upsample="nearest"))
        elif task == "deblur":
            cfg.update(lam=5.0)
        cfg.update(overrides)
        return cls(**cfg)

    def optimizer(self):
        return optax.adam(self.lr)

    def init(self, key, problem) -> ASeqDIPState:
        h, w, _ = problem.image_shape
        self.network.check_size(h, w)
        z = problem.operator.adjoint(problem.y).astype(jnp.float32)
        if tuple(self.network.input_shape(h, w)) != z.shape:
            raise ValueError(f"aSeqDIP feeds the image-shaped A^T y {z.shape} to the network, which takes "
                             f"{self.network.input_shape(h, w)}: build it with in_channels={z.shape[-1]}")
        params = self.network.init(key, z)["params"]
        x = self.network.apply({"params": params}, z)
        check_output(x, problem)
        return ASeqDIPState(params, self.optimizer().init(params), z, x, jnp.zeros((), jnp.int32))

    def step(self, state: ASeqDIPState, problem, key):
        def loss_fn(params):
            x = self.network.apply({"params": params}, state.z)
            data = residual_norm(problem.operator(x) - problem.y, self.norm)
            return data + self.lam * residual_norm(x - state.z, self.norm), (x, data)

        (loss, (x, data)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.optimizer().update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        step = state.step + 1

        def next_stage(_):
            out = self.network.apply({"params": params}, state.z) if self.z_update == "recompute" else x
            out = jax.lax.stop_gradient(out)
            z = out if self.purifier is None else jax.lax.stop_gradient(self.purifier(out, key)).astype(out.dtype)
            return z, out

        z, x = jax.lax.cond(step % self.inner_steps == 0, next_stage, lambda _: (state.z, x), None)
        return ASeqDIPState(params, opt_state, z, x, step), {"loss": loss, "data_loss": data}

    def estimate(self, state: ASeqDIPState, problem) -> jax.Array:
        return state.x
