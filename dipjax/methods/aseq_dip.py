"""aSeqDIP, autoencoding sequential DIP (Alkhouri, Liang, Bell, Qu, Wang, Ravishankar, NeurIPS 2024; survey eq. (15)):

    z_0 = A^T y;   for k = 1..K:  θ_k = N Adam steps from θ_{k−1} on  D(A f_θ(z_{k−1}), y) + λ R(f_θ(z_{k−1}), z_{k−1})
                                 z_k = f_{θ_k}(z_{k−1})                      x* = z_K

The input starts at the degraded image ``init_image(y)`` (the noisy, masked, bicubic-upsampled or blurred image; the
authors feed "the corrupted image"), the network is never
re-initialised, there is no input perturbation, and ``steps`` of the engine count *network updates*: K = steps / N,
the same budget as vanilla DIP (the paper's protocol). ``z_update``: ``"last_forward"`` takes ``z_k`` from the last
inner forward pass, computed before the final optimiser step (the authors' denoising, deblurring and CT scripts);
``"recompute"`` evaluates the updated network (their inpainting script).

Diffusion-guided hook (uDiG-DIP): ``purifier(x, key) -> x`` is applied to every input update, ``z_k =
purifier(f_{θ_k}(z_{k−1}), key)``, so a user with a pre-trained diffusion model passes its purification (noise to a
level, then denoise) here. Any JAX function works; dipjax ships no weights and downloads nothing. The purifier runs
under ``stop_gradient`` and only at stage boundaries (``lax.cond``).

Per-task defaults (official scripts, METHODS.md §2) in :data:`PRESETS`: denoising 2000 × 2 updates, λ = 1, lr 1e-4,
shallow U-Net with N(0, 0.02) init; inpainting 200 × 2, lr 3e-4, ``recompute``, a 5-level skip net with nearest
upsampling; deblurring 5000 × 2, λ = 5; multi-coil MRI 6000 × 10, the medium U-Net, unsquared unnormalised norms
``‖A f − y‖₂ + λ‖f − z‖₂`` (``norm="euclidean"``: the scripts' ``torch.linalg.norm``; norms averaged over entries
would weigh λ by √(measurements / image entries), 2× with 8 coils) and the data-consistent input update
``z ← Sᴴ F⁻¹[(1 − M) F S f(z) + M y]`` (``data_consistency``); sparse-view CT 2000 × 10, lr 2e-4, the medium U-Net,
the same unnormalised norms, ``z₀`` = the min–max normalised FBP (``normalize_input``). Mean-squared norms elsewhere
(the scripts' ``MSELoss``, whose two terms have equally many entries there).

With root-sum-of-squares-normalised coil maps (``SᴴS = I``) the MRI input update equals ``f + Aᴴ(y − A f)`` at
``f = f_θ(z)``: a Landweber step from the network's output. The autoencoding term pulls ``f_θ`` towards the identity,
so over many stages the input follows Landweber's iteration for ``min ‖Az − y‖²`` and inherits its semi-convergence
on noisy data (it rises, then amplifies the noise): on the 64² MRI row of Figure 5 aSeqDIP's curve stays within
1.5 dB of Landweber's and falls with it over the 6000 stages (``experiments/aseq_dip_landweber.py``, README).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from dipjax.methods.base import fitting_step, image_input, init_network
from dipjax.methods.registry import MethodSpec, Option, preset, register_method
from dipjax.methods.self_guided import unet_network
from dipjax.networks import shallow_unet, skip_net
from dipjax.regularizers import NORMS, residual_norm
from dipjax.validation import require, require_finite


class ASeqDIPState(NamedTuple):
    params: Any
    opt_state: Any
    z: jax.Array  # the current stage's input z_{k−1}
    out: jax.Array  # network output of the last step's forward pass
    x: jax.Array  # the reconstruction: out, or at a stage boundary with "recompute" the updated network's output
    step: jax.Array  # network updates so far


@dataclasses.dataclass(frozen=True)
class ASeqDIP:
    network: nn.Module = dataclasses.field(default_factory=shallow_unet)
    lr: float = 1e-4
    lam: float = 1.0
    inner_steps: int = 2
    norm: str = "l2sq"
    z_update: str = "last_forward"  # or "recompute"
    data_consistency: bool = False  # MRI: z_k from the output with its sampled k-space replaced by the data
    normalize_input: bool = False  # CT: z_0 = min-max normalised FBP
    purifier: Callable | None = None
    name: str = "aseq_dip"

    def __post_init__(self):
        require_finite(self, "lr", "lam")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(self.lam >= 0, "lam", f"must be non-negative, got {self.lam}")
        require(self.inner_steps >= 1, "inner_steps", f"must be at least 1, got {self.inner_steps}")
        require(self.norm in NORMS, "norm", f"must be one of {', '.join(NORMS)}, got {self.norm!r}")
        require(self.z_update in ("last_forward", "recompute"), "z_update",
                f"must be 'last_forward' or 'recompute', got {self.z_update!r}")

    @functools.cached_property
    def optimizer(self):
        return optax.adam(self.lr)

    def init(self, key, problem) -> ASeqDIPState:
        self.network.check_size(*problem.image_shape[:2])
        if self.data_consistency and not hasattr(problem.operator, "data_consistent"):
            raise ValueError(f"aSeqDIP's data-consistent input update needs an operator with data_consistent(x, y) "
                             f"(MultiCoilMRI); {type(problem.operator).__name__} has none")
        z = image_input(self.network, problem)
        if self.normalize_input:
            z = (z - z.min()) / jnp.maximum(z.max() - z.min(), 1e-12)
        params, out = init_network(self.network, key, z, problem)
        return ASeqDIPState(params, self.optimizer.init(params), z, out, out, jnp.zeros((), jnp.int32))

    def step(self, state: ASeqDIPState, problem, key):
        def loss_fn(params):
            x = self.network.apply({"params": params}, state.z)
            data = residual_norm(problem.operator(x) - problem.y, self.norm)
            return data + self.lam * residual_norm(x - state.z, self.norm), (x, data)

        params, opt_state, loss, (out, data) = fitting_step(self.optimizer, loss_fn, state.params, state.opt_state)
        step = state.step + 1

        def next_stage(_):
            x = self.network.apply({"params": params}, state.z) if self.z_update == "recompute" else out
            x = jax.lax.stop_gradient(x)
            if self.data_consistency:
                x = problem.operator.data_consistent(x, problem.y)
            z = x if self.purifier is None else jax.lax.stop_gradient(self.purifier(x, key)).astype(x.dtype)
            return z, x

        z, x = jax.lax.cond(step % self.inner_steps == 0, next_stage, lambda _: (state.z, out), None)
        return ASeqDIPState(params, opt_state, z, out, x, step), {"loss": loss, "data_loss": data}

    def estimate(self, state: ASeqDIPState, problem) -> jax.Array:
        return state.x


def aseq_network(image_shape, width: int | None = None, scales: int | None = None, arch: str = "unet",
                 **kwargs) -> nn.Module:
    """aSeqDIP's networks: ``arch="unet"`` the shallow U-Net (first width ``width`` = 64, ``scales`` = 2 poolings),
    ``arch="skip"`` the inpainting script's skip net (``width`` = 128 channels, ``scales`` = 5 levels, nearest
    upsampling); input channels = the image's (the input is an image)."""
    c = image_shape[-1]
    if arch == "unet":
        return unet_network(image_shape, width=width or 64, scales=scales or 2, **kwargs)
    if arch == "skip":
        return skip_net(out_channels=c, in_channels=c, width=width or 128, scales=scales or 5, **kwargs)
    raise ValueError(f"unknown aSeqDIP network {arch!r}; expected 'unet' or 'skip'")


#: aSeqDIP's official scripts (sjames40/Aseq_DIP f6d4a66; METHODS.md §2). Steps are network updates K × N.
PRESETS = (
    preset(None, "no aSeqDIP script for this task: the denoising script's values", steps=4000, lr=1e-4, lam=1.0,
           inner_steps=2),
    preset("denoise", "Aseq_DIP_denoising.py:70-133: 2000 × 2 updates, λ = 1, Adam 1e-4, shallow U-Net",
           steps=4000, lr=1e-4, lam=1.0, inner_steps=2),
    preset("inpaint", "Aseq_DIP_inpainting.py:131-224: 200 × 2 updates, λ = 1, Adam 3e-4, skip net (5 × 128, "
           "nearest), z from the updated network", steps=400, lr=3e-4, lam=1.0, inner_steps=2,
           z_update="recompute", network=dict(arch="skip", upsample="nearest")),
    preset("deblur", "Aseq_DIP_Deblurring.py:137-202: 5000 × 2 updates, λ = 5, Adam 1e-4, shallow U-Net",
           steps=10_000, lr=1e-4, lam=5.0, inner_steps=2),
    preset("mri", "Aseq_DIP_MRI.py:73-151: 6000 × 10 updates, λ = 1, Adam 1e-4, MediumUNet 2→2, "
           "torch.linalg.norm terms, data-consistent input update", steps=60_000, lr=1e-4, lam=1.0, inner_steps=10, norm="euclidean",
           data_consistency=True, network=dict(scales=3)),
    preset("ct", "Aseq_DIP_CT.py:65-124: 2000 × 10 updates, λ = 1, Adam 2e-4, MediumUNet 1→1, torch.linalg.norm terms, "
           "z₀ = min-max normalised FBP", steps=20_000, lr=2e-4, lam=1.0, inner_steps=10, norm="euclidean",
           normalize_input=True, network=dict(scales=3)),
)

register_method(MethodSpec("aseq_dip", "aSeqDIP", ASeqDIP, aseq_network, PRESETS, (
    Option("lr", "lr", "Adam learning rate"),
    Option("lam", "lam", "weight λ of the self-guidance (or autoencoding) term"),
    Option("inner-steps", "inner_steps", "network updates N per input update"))))
