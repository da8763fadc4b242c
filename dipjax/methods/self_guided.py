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
(:func:`dipjax.regularizers.residual_norm`), which for denoising equals the unnormalised form up to one constant;
where the data and the image have different numbers of entries the means weigh λ differently (ℓ1: by measurements
/ image entries, 4× on MRI with 8 coils). The demo writes its ℓ1 terms without normalisation, but its code was not
readable (METHODS.md §1), so the presets keep the means; ``norm="euclidean"`` gives unnormalised ℓ2 terms.
``reg_form="per_realization"`` is the DIP-CT handbook's variant ``Σ_j R(f_θ(z + η_j), z)``. The network is the
shallow U-Net of the same lab (any image-to-image network works: input and output channels equal the image's).

The CT preset is the DIP-CT handbook's (alexdenker/deep-image-prior-handbook 74559d1, ``dip/model/selfg_dip.py`` and
``run_dip.py``; the authors' CT code was not found): the FBP as the initial input, the loss ``‖A x̄ − y‖² / ‖A‖² + λ
J Σ_j ‖f_θ(z + η_j) − z‖²`` with sums of squares (``norm="euclidean_sq"``, ``reg_form="per_realization"``,
``normalize_operator``; its factor J is folded into λ = 0.01 · 4), and each group's gradient clipped to global norm
1 before its Adam (``clip_norm``), as its ``clip_grad_norm_`` calls. Four of its details are not copied. Its network
(a six-scale U-Net of 128 channels with a sigmoid, for 501² walnut slices) is the lab's U-Net here, as on the other
tasks. Its ``power_iteration`` returns ``‖A‖²`` (the Rayleigh quotient of ``AᵀA``), which it then squares again
(``L2_inv = 1 / L**2``), so its data term is divided by ``‖A‖⁴``, which makes the balance of the two terms depend on
the scale of A; dipjax divides by ``‖A‖²``, the scale-free form its docstring ("the Lipschitz constant of the
ray_trafo") intends. And its moving average starts from zeros (``exp_weight`` 0.99 darkens the first few hundred
iterates); dipjax's starts from the first output. PyTorch's batch norm in train mode takes its statistics over the
batch of J perturbed inputs; dipjax's networks normalise each image on its own.

Data scale on MRI: the lab's MRI code scales by quantities of the *fully sampled* k-space (its dataset loader
``two_channel_dataset_DIP_github.py`` normalises by ``max|Sᴴ x|``, aSeqDIP's ``Aseq_DIP_MRI.py`` by
``‖f(z₀)‖ / ‖Sᴴ y_full‖``; METHODS.md), which an undersampled acquisition does not have: it leaks the ground truth
into the scaling. dipjax never does: simulated data have the image's own scale (peak magnitude 1) and fastMRI files
are divided by the peak of their zero-filled image, from the measured samples only (:meth:`dipjax.tasks.mri.MRIConfig.load_measured`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from dipjax.baselines import operator_norm
from dipjax.methods import dip
from dipjax.methods.base import ema, fitting_step, image_input, init_network
from dipjax.methods.registry import MethodSpec, Option, preset, register_method
from dipjax.networks import UNet, shallow_unet
from dipjax.regularizers import NORMS, residual_norm
from dipjax.validation import require, require_finite


class SelfGuidedState(NamedTuple):
    params: Any
    z: jax.Array  # the trainable input, image-shaped
    opt_state: Any  # optax.multi_transform state over {"params", "z"}
    out: jax.Array  # x̄ of the last step: the mean network output over the η draws
    out_avg: jax.Array  # its exponential moving average
    step: jax.Array
    data_weight: jax.Array  # 1, or 1 / ‖A‖² with normalize_operator


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
    input_init: str = "random"  # or "measurement": init_image(y), as reference-guided runs do
    output_ema: float = 0.95
    clip_norm: float = 0.0  # > 0: the gradients of θ and of z each clipped to this global norm before their Adams
    normalize_operator: bool = False  # the data term divided by ‖A‖² (power iteration on AᴴA at init)
    name: str = "self_guided_dip"

    def __post_init__(self):
        require_finite(self, "lr_theta", "lr_z", "lam", "noise_scale", "output_ema", "clip_norm")
        require(min(self.lr_theta, self.lr_z) > 0, "lr_theta", "and lr_z must be positive")
        require(self.lam >= 0, "lam", f"must be non-negative, got {self.lam}")
        require(self.noise_scale >= 0, "noise_scale", f"must be non-negative, got {self.noise_scale}")
        require(self.n_realizations >= 1, "n_realizations", f"must be at least 1, got {self.n_realizations}")
        require(self.norm in NORMS, "norm", f"must be one of {', '.join(NORMS)}, got {self.norm!r}")
        require(self.reg_form in ("mean_output", "per_realization"), "reg_form",
                f"must be 'mean_output' or 'per_realization', got {self.reg_form!r}")
        require(self.input_init in ("random", "measurement"), "input_init",
                f"must be 'random' or 'measurement', got {self.input_init!r}")
        require(0 <= self.output_ema < 1, "output_ema", f"must be in [0, 1), got {self.output_ema}")
        require(self.clip_norm >= 0, "clip_norm", f"must be non-negative (0: no clipping), got {self.clip_norm}")

    @functools.cached_property
    def optimizer(self):
        def group(lr):
            adam = optax.adam(lr)
            return optax.chain(optax.clip_by_global_norm(self.clip_norm), adam) if self.clip_norm else adam

        return optax.multi_transform({"params": group(self.lr_theta), "z": group(self.lr_z)},
                                     {"params": "params", "z": "z"})

    def init(self, key, problem) -> SelfGuidedState:
        h, w, c = problem.image_shape
        self.network.check_size(h, w)
        k_net, k_z = jax.random.split(key)
        if self.input_init == "random":
            z = jax.random.uniform(k_z, self.network.input_shape(h, w))
        else:
            z = image_input(self.network, problem)
        params, out = init_network(self.network, k_net, z, problem)
        if z.shape != out.shape:
            raise ValueError(f"Self-Guided DIP needs an image-shaped input; the network takes {z.shape} and "
                             f"returns {out.shape}")
        opt_state = self.optimizer.init({"params": params, "z": z})
        data_weight = jnp.ones((), jnp.float32)
        if self.normalize_operator:
            if not problem.operator.linear:
                raise ValueError("Self-Guided DIP's normalize_operator divides the data term by ‖A‖², which a "
                                 "nonlinear forward model does not have")
            data_weight = 1 / operator_norm(problem.operator, jax.random.fold_in(key, 2)) ** 2
        return SelfGuidedState(params, z, opt_state, out, out, jnp.zeros((), jnp.int32), data_weight)

    def step(self, state: SelfGuidedState, problem, key):
        a = self.noise_scale * jax.lax.stop_gradient(jnp.max(state.z))
        eta = a * jax.random.uniform(key, (self.n_realizations,) + state.z.shape)

        def loss_fn(trainable):
            outs = self.network.apply({"params": trainable["params"]}, trainable["z"][None] + eta)
            x_bar = jnp.mean(outs, axis=0)
            data = state.data_weight * residual_norm(problem.operator(x_bar) - problem.y, self.norm)
            if self.reg_form == "mean_output":
                reg = residual_norm(x_bar - trainable["z"], self.norm)
            else:
                reg = jnp.sum(jax.vmap(lambda o: residual_norm(o - trainable["z"], self.norm))(outs))
            return data + self.lam * reg, (x_bar, data)

        trainable, opt_state, loss, (x_bar, data) = fitting_step(
            self.optimizer, loss_fn, {"params": state.params, "z": state.z}, state.opt_state)
        new = SelfGuidedState(trainable["params"], trainable["z"], opt_state, x_bar,
                              ema(state.out_avg, x_bar, self.output_ema), state.step + 1, state.data_weight)
        return new, {"loss": loss, "data_loss": data}

    def estimate(self, state: SelfGuidedState, problem) -> jax.Array:
        return state.out_avg


def unet_network(image_shape, width: int = 64, scales: int = 2, **kwargs) -> nn.Module:
    """The U-Net of aSeqDIP / Self-Guided DIP with first width ``width`` and ``scales`` poolings: the shallow net
    ``(w, 2w, 2w)`` by default, the medium net ``(w, 2w, 4w, 4w)`` at ``scales=3``; input channels = image's."""
    c = image_shape[-1]
    if scales < 1:
        raise ValueError(f"a U-Net needs at least one pooling, got scales={scales}")
    features = tuple(width * 2 ** min(j, scales - 1) for j in range(scales)) + (width * 2 ** (scales - 1),)
    return UNet(out_channels=c, in_channels=c, features=features, **kwargs)


register_method(MethodSpec("sg_dip", "Self-Guided DIP", SelfGuidedDIP, unet_network, (
    preset(None, "self_guided_DIP_demo.ipynb (sjames40/Self-Guided-DIP 36ab364): 4000 iterations, lr_θ 3e-4, "
           "lr_z 0.1, λ = 2, ℓ1; J = 3, c = 1/2, EMA 0.95 from the lab's later code (METHODS.md §1)", steps=4000),
    preset("mri", "self_guided_DIP_demo.ipynb: the ExtraDeepUNet 2→2 has 5 poolings (widths 64…1024); its random "
           "U[0, 1) input of the image's shape", network=dict(scales=5)),
    preset("ct", "DIP-CT handbook (alexdenker/deep-image-prior-handbook 74559d1) run_dip.py, selfg_dip.py [V3]: "
           "FBP input, Adam 1e-4 / 0.1 with gradients clipped to norm 1, ‖A x̄ − y‖² / ‖A‖² + 0.01 · J Σ_j "
           "‖f_j − z‖² (λ = 0.04 with J = 4), noise 0.01·max(z), EMA 0.99, 10,000 iterations", steps=10_000,
           lr_theta=1e-4, lam=0.04, noise_scale=0.01, n_realizations=4, output_ema=0.99, norm="euclidean_sq",
           reg_form="per_realization", input_init="measurement", clip_norm=1.0, normalize_operator=True),
), (Option("lr", "lr_theta", "learning rate of the network (Adam)"),
    Option("lr-z", "lr_z", "learning rate of the input (Adam)"),
    Option("lam", "lam", "weight λ of the self-guidance (or autoencoding) term"), dip.EMA)))
