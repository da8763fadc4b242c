"""DeepRED (Mataev, Milanfar, Elad, ICCV-W 2019; survey §3.4): DIP regularised by RED, split by ADMM.

    min_{θ, x}  ½‖A f_θ(z) − y‖² + (β/2) xᵀ(x − D(x))   s.t.  x = f_θ(z)

Per iteration (``train_via_admm`` of GaryMataev/DeepRED), with penalty μ and scaled dual u:

1. θ: one Adam step on ``mean|A f_θ(z+ε) − y|² + μ mean|f_θ(z+ε) − (x − u)|²``, ε ~ N(0, σ_in²) redrawn per step;
2. every ``denoiser_every`` (10) iterations, refresh ``d = D(x)``; the denoiser is never differentiated
   (``stop_gradient``) and any ``x ↦ D(x)`` written in JAX plugs in. Upstream runs the denoiser in a background
   thread and uses the result it launched 10 iterations earlier; here it runs synchronously on the current x, so
   ``d`` is at most ``denoiser_every − 1`` iterations stale instead of up to twice that;
3. x: the fixed-point update ``x ← clip((β d + μ (f + u)) / (β + μ), 0, 1)``;
4. u: ``u ← u + f − x``.

Denoising defaults (``denoising.ipynb``): lr 0.008, σ_in = 0.033, β = μ = 0.5, NLM with σ_f = 3/255 (per channel,
h = 0.6 σ_f, patch 5, distance 6), 6000 iterations, output the EMA 0.99 of the network outputs, and the notebook's
adaptive strengthening (while PSNR(f, y) exceeds a threshold starting at 20 dB, β and μ grow by 0.03 and the
threshold by 0.01 per iteration; only where y is image-shaped). Deblurring (β 0.02, μ 0.04, lr 0.004, σ_in 0.01)
and super-resolution (β 0.05, μ 0.06, lr 0.001, σ_in 0.02, 2000 iterations; BM3D with σ_f = 5 upstream, non-local
means here) report ``x − u`` (:data:`PRESETS`). x starts at the degraded image ``init_image(y)`` clipped to [0, 1]
(upstream: ``y`` itself, zeros for super-resolution), u at 0. Only step 1 sees the forward model, through autodiff,
so DeepRED applies to nonlinear operators (phase retrieval, nonlinear deblurring) as well.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from dipjax.denoisers import NonLocalMeans
from dipjax.methods import dip
from dipjax.methods.base import ema, fitting_step, init_random_input, mean_squared_residual
from dipjax.methods.registry import MethodSpec, Option, preset, register_method
from dipjax.networks import skip_net
from dipjax.validation import require, require_finite


class DeepREDState(NamedTuple):
    params: Any
    opt_state: Any
    z: jax.Array
    x: jax.Array  # ADMM image variable
    u: jax.Array  # scaled dual
    d: jax.Array  # the latest denoiser output D(x)
    out: jax.Array  # network output of the last step
    out_avg: jax.Array
    beta: jax.Array
    mu: jax.Array
    threshold: jax.Array  # adaptive strengthening threshold (dB)
    step: jax.Array


@dataclasses.dataclass(frozen=True)
class DeepRED:
    network: nn.Module = dataclasses.field(default_factory=skip_net)
    lr: float = 0.008
    beta: float = 0.5
    mu: float = 0.5
    input_noise_std: float = 0.033
    denoiser: Callable = dataclasses.field(default_factory=NonLocalMeans)
    denoiser_every: int = 10
    output: str = "ema"  # or "admm" (x − u)
    output_ema: float = 0.99
    adaptive: bool = True
    name: str = "deepred"

    def __post_init__(self):
        require_finite(self, "lr", "beta", "mu", "input_noise_std", "output_ema")
        require(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        require(self.beta >= 0, "beta", f"must be non-negative, got {self.beta}")
        require(self.mu > 0, "mu", f"must be positive, got {self.mu}")
        require(self.input_noise_std >= 0, "input_noise_std", f"must be non-negative, got {self.input_noise_std}")
        require(self.denoiser_every >= 1, "denoiser_every", f"must be at least 1, got {self.denoiser_every}")
        require(self.output in ("ema", "admm"), "output", f"must be 'ema' or 'admm', got {self.output!r}")
        require(0 <= self.output_ema < 1, "output_ema", f"must be in [0, 1), got {self.output_ema}")

    @functools.cached_property
    def optimizer(self):
        return optax.adam(self.lr)

    def init(self, key, problem) -> DeepREDState:
        if getattr(problem.operator, "complex_image", False):
            raise ValueError("DeepRED's x-step clips the image to [0, 1] and its denoiser is for real images; it does "
                             "not apply to complex images (MRI)")
        params, z, out = init_random_input(self.network, key, problem)
        x = jnp.clip(problem.operator.init_image(problem.y), 0, 1).astype(jnp.float32)
        f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
        return DeepREDState(params, self.optimizer.init(params), z, x, jnp.zeros_like(x), x, out, out,
                            f32(self.beta), f32(self.mu), f32(20.0), jnp.zeros((), jnp.int32))

    def step(self, state: DeepREDState, problem, key):
        s = state
        z_in = s.z + self.input_noise_std * jax.random.normal(key, s.z.shape)

        def loss_fn(params):
            out = self.network.apply({"params": params}, z_in)
            data = mean_squared_residual(problem.operator, out, problem.y)
            return data + s.mu * jnp.mean(jnp.square(out - (s.x - s.u))), (out, data)

        params, opt_state, loss, (out, data) = fitting_step(self.optimizer, loss_fn, s.params, s.opt_state)
        out = jax.lax.stop_gradient(out)
        d = jax.lax.cond(s.step % self.denoiser_every == 0,
                         lambda x: jax.lax.stop_gradient(self.denoiser(x)).astype(x.dtype), lambda x: s.d, s.x)
        x = jnp.clip((s.beta * d + s.mu * (out + s.u)) / (s.beta + s.mu), 0, 1)
        u = s.u + out - x
        beta, mu, threshold = s.beta, s.mu, s.threshold
        if self.adaptive and problem.y.shape == out.shape:
            p = -10 * jnp.log10(jnp.mean(jnp.square(out - problem.y)))
            up = p > threshold
            beta, mu, threshold = beta + 0.03 * up, mu + 0.03 * up, threshold + 0.01 * up
        new = DeepREDState(params, opt_state, s.z, x, u, d, out, ema(s.out_avg, out, self.output_ema),
                           beta, mu, threshold, s.step + 1)
        return new, {"loss": loss, "data_loss": data}

    def estimate(self, state: DeepREDState, problem) -> jax.Array:
        return state.out_avg if self.output == "ema" else state.x - state.u


#: GaryMataev/DeepRED notebooks (e772358; METHODS.md §8b).
PRESETS = (
    preset(None, "no DeepRED notebook for this task: the denoising hyper-parameters, reporting x − u",
           steps=6000, output="admm", adaptive=False),
    preset("denoise", "denoising.ipynb cells 5, 8, 15: 6000 iterations, lr 0.008, σ_f = 3, β = μ = 0.5, "
           "σ_in 0.033, EMA 0.99 of the outputs, adaptive strengthening", steps=6000, output="ema", adaptive=True),
    preset("deblur", "deblurring.ipynb cells 5, 14: 30,000 iterations, lr 0.004, β 0.02, μ 0.04, σ_in 0.01, x − u "
           "(the StepLR ×0.9 every 1000 is not applied)", steps=30_000, lr=0.004, beta=0.02, mu=0.04,
           input_noise_std=0.01, output="admm", adaptive=False),
    preset("sr", "super_resolution.ipynb cells 6, 15, 17: 2000 iterations, lr 0.001, β 0.05, μ 0.06, σ_in 0.02, "
           "x − u; BM3D σ_f = 5 upstream, non-local means σ_f = 5 here", steps=2000, lr=0.001, beta=0.05, mu=0.06,
           input_noise_std=0.02, output="admm", adaptive=False, denoiser=NonLocalMeans(sigma=5.0 / 255.0)),
)

register_method(MethodSpec("deepred", "DeepRED", DeepRED, dip.dip_network, PRESETS, (
    dip.LR, dip.INPUT_NOISE, dip.EMA,
    Option("beta", "beta", "weight β of the RED prior"), Option("mu", "mu", "ADMM penalty μ"))))
