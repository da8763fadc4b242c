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
and super-resolution (β 0.05, μ 0.06, lr 0.001, σ_in 0.02) report ``x − u``: :meth:`DeepRED.for_task`.
x starts at A^T y, u at 0.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from dipjax.denoisers import NonLocalMeans
from dipjax.methods.dip import ema, init_network, mean_squared_residual
from dipjax.networks import skip_net

#: DeepRED's iteration counts per task (denoising, deblurring, super-resolution notebooks).
DEEPRED_STEPS = {"denoise": 6000, "deblur": 30000, "sr": 2000}


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
        if self.lr <= 0 or self.beta < 0 or self.mu <= 0 or self.input_noise_std < 0 or self.denoiser_every < 1:
            raise ValueError("DeepRED needs lr > 0, beta >= 0, mu > 0, input_noise_std >= 0, denoiser_every >= 1")
        if self.output not in ("ema", "admm") or not 0 <= self.output_ema < 1:
            raise ValueError("DeepRED's output is 'ema' or 'admm' and 0 <= output_ema < 1")

    @classmethod
    def for_task(cls, task: str, channels: int, **overrides) -> "DeepRED":
        cfg: dict = dict(network=skip_net(out_channels=channels))
        if task == "deblur":
            cfg.update(lr=0.004, beta=0.02, mu=0.04, input_noise_std=0.01, output="admm", adaptive=False)
        elif task == "sr":
            cfg.update(lr=0.001, beta=0.05, mu=0.06, input_noise_std=0.02, output="admm", adaptive=False,
                       denoiser=NonLocalMeans(sigma=5.0 / 255.0))
        elif task != "denoise":
            cfg.update(output="admm", adaptive=False)
        cfg.update(overrides)
        return cls(**cfg)

    def init(self, key, problem) -> DeepREDState:
        params, z, out = init_network(self.network, key, problem)
        x = jnp.clip(problem.operator.adjoint(problem.y), 0, 1).astype(jnp.float32)
        f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
        return DeepREDState(params, optax.adam(self.lr).init(params), z, x, jnp.zeros_like(x), x, out, out,
                            f32(self.beta), f32(self.mu), f32(20.0), jnp.zeros((), jnp.int32))

    def step(self, state: DeepREDState, problem, key):
        s = state
        z_in = s.z + self.input_noise_std * jax.random.normal(key, s.z.shape)

        def loss_fn(params):
            out = self.network.apply({"params": params}, z_in)
            data = mean_squared_residual(problem.operator, out, problem.y)
            return data + s.mu * jnp.mean(jnp.square(out - (s.x - s.u))), (out, data)

        (loss, (out, data)), grads = jax.value_and_grad(loss_fn, has_aux=True)(s.params)
        updates, opt_state = optax.adam(self.lr).update(grads, s.opt_state, s.params)
        params = optax.apply_updates(s.params, updates)
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
