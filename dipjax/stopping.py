"""Early-stopping rules: monitors (:mod:`dipjax.monitors`) that the engine runs beside any method.

A stopper is a monitor whose state has the fields ``stopped`` (bool scalar: the rule has fired), ``t_stop`` (int32:
the 0-based index of the update whose iterate the rule returns) and ``x_stop`` (that iterate). It watches the
network output of each step (``view.out``, ``state.out`` of every method), records its statistic in the history
(``wmv_variance`` / ``emv_variance``; non-finite before it is defined), and reports ``x_stop`` and ``iter_stop``
(1-based). The engine keeps running a batch until every image's stopper has fired (then it may exit early).

The rules of ES-DIP (Wang et al., TMLR 2023; survey eq. 16): :class:`WindowedMovingVariance` (ES-WMV) and
:class:`ExponentialMovingVariance` (ES-EMV); :func:`windowed_moving_variance` computes the WMV of a whole stored
trajectory offline (used by the theory package to compare real training with the NTK prediction).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp


class Stopper(Protocol):
    name: str

    def init(self, view) -> Any: ...

    def update(self, state: Any, view) -> tuple[Any, dict[str, jax.Array]]: ...

    def summary(self, state: Any) -> dict[str, jax.Array]: ...

    def stopped(self, state: Any) -> jax.Array: ...


class _StopperSummary:
    """``summary`` and ``stopped`` shared by the rules below."""

    def summary(self, state):
        return {"x_stop": state.x_stop, "iter_stop": state.t_stop + 1}

    def stopped(self, state):
        return state.stopped


def windowed_moving_variance(frames, window: int):
    """ES-DIP's windowed moving variance (Wang et al. 2023, survey eq. 16) of a whole trajectory, offline.

    ``frames``: ``(T, ...)`` iterates ``x_0 … x_{T-1}``. Returns ``(T − window + 1,)``: entry ``j`` is
    ``(1/W) Σ_{i=j}^{j+W−1} mean_pixels[(x_i − x̄)²]`` with ``x̄`` the window's mean, i.e. the variance of the window
    that *ends* at iterate ``j + W − 1`` (the authors' code divides by the number of pixels; the paper's Frobenius
    form differs by that constant). Computed exactly (two-pass, float64) on the host, a block of windows at a time:
    running sums would cancel catastrophically late in a run, where the variance is many orders below the pixels'.
    """
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(frames, np.float64).reshape(len(frames), -1)
    if not 1 <= window <= len(x):
        raise ValueError(f"window must be between 1 and the number of frames ({len(x)}), got {window}")
    windows = sliding_window_view(x, window, axis=0)  # (T − W + 1, n, W), a view
    block = max(1, 2 ** 22 // (x.shape[1] * window))
    return np.concatenate([np.var(windows[i:i + block], axis=-1).mean(axis=-1)
                           for i in range(0, len(windows), block)])


class WMVState(NamedTuple):
    buffer: jax.Array  # (W, n_pixels) ring buffer of the last W (possibly subsampled) estimates
    count: jax.Array  # estimates pushed so far
    variance: jax.Array  # VAR of the newest full window (inf before the window is full)
    var_min: jax.Array
    patience: jax.Array  # updates since var_min last improved
    stopped: jax.Array
    t_stop: jax.Array
    x_stop: jax.Array


@dataclasses.dataclass(frozen=True)
class WindowedMovingVariance(_StopperSummary):
    """ES-WMV (Wang et al., TMLR 2023; survey eq. 16) as a stopper for any method.

    Keeps the last ``window`` estimates; once the window is full, ``VAR(t) = (1/W) Σ mean_pixels (x − x̄)²`` over it.
    A new minimum of VAR records the iterate ``x_t`` at the *end* of that window and resets the patience counter;
    otherwise the counter grows and the rule fires when it reaches ``patience`` — the authors' code (W = 100,
    P = 1000). The returned iterate is the one at the end of the minimum-variance window.

    Memory: the window is ``W × pixels`` float32 values — 315 MB for one 512² RGB image at W = 100 (and B times that
    for a batch). ``max_pixels`` computes VAR on a fixed, evenly strided subset of at most that many entries: VAR is a
    mean over pixels, so this is an unbiased estimate of it, and 65,536 entries make the 512² RGB window 26 MB. It is
    off by default (exact VAR); the stored ``x_stop`` is always the full image. Lower-precision frames are not
    offered: late in a run consecutive estimates differ by less than float16/bfloat16 rounding, which would swamp
    the variance being measured.
    """

    window: int = 100
    patience: int = 1000
    max_pixels: int | None = None
    name: str = "wmv"

    def __post_init__(self):
        if self.window < 2 or self.patience < 1 or (self.max_pixels is not None and self.max_pixels < 1):
            raise ValueError("ES-WMV needs window >= 2, patience >= 1 and max_pixels >= 1 (or None)")

    def _pixels(self, x):
        flat = x.reshape(-1)
        if self.max_pixels is None or flat.size <= self.max_pixels:
            return flat
        stride = -(-flat.size // self.max_pixels)
        return flat[::stride]

    def init(self, view) -> WMVState:
        x0 = view.out
        n = self._pixels(x0).size
        inf = jnp.asarray(jnp.inf, jnp.float32)
        return WMVState(jnp.zeros((self.window, n), jnp.float32), jnp.zeros((), jnp.int32), inf, inf,
                        jnp.zeros((), jnp.int32), jnp.asarray(False), jnp.asarray(-1, jnp.int32), x0)

    def update(self, s: WMVState, view) -> tuple[WMVState, dict]:
        x, t = view.out, view.t
        buffer = s.buffer.at[s.count % self.window].set(self._pixels(x).astype(jnp.float32))
        count = s.count + 1
        var = jnp.mean((buffer - jnp.mean(buffer, axis=0)) ** 2)  # two-pass: no cancellation
        full = count >= self.window
        variance = jnp.where(full, var, jnp.inf)
        better = full & (variance < s.var_min) & ~s.stopped
        patience = jnp.where(better, 0, s.patience + (full & ~s.stopped).astype(jnp.int32))
        return WMVState(buffer, count, variance, jnp.where(better, variance, s.var_min), patience,
                        s.stopped | (patience >= self.patience), jnp.where(better, t, s.t_stop),
                        jnp.where(better, x, s.x_stop)), {"wmv_variance": variance}


class EMVState(NamedTuple):
    mean: jax.Array  # m_t, the clipped exponential moving average of the estimates
    variance: jax.Array  # v_t
    var_min: jax.Array
    patience: jax.Array
    stopped: jax.Array
    t_stop: jax.Array
    x_stop: jax.Array


@dataclasses.dataclass(frozen=True)
class ExponentialMovingVariance(_StopperSummary):
    """ES-EMV (Wang et al., TMLR 2023), the memory-light variant: two image-sized buffers.

    ``δ_t = x_t − m_{t−1}``, ``m_t = clip(m_{t−1} + α δ_t, 0, 1)``, ``v_t = (1 − α)(v_{t−1} + α ‖δ_t‖²)`` (a sum over
    pixels, as in the authors' notebook), from ``m_0 = x_0``, ``v_0 = 0``. After ``burn_in`` updates, a new minimum
    of ``v_t`` records the iterate and resets the patience counter; the rule fires after ``patience`` updates
    without one. Defaults α = 0.1, P = 1000, burn-in 100. ``returns="ema"`` (default, what the notebook evaluates)
    returns ``m_{t*}``; ``returns="iterate"`` returns ``x_{t*}``.
    """

    alpha: float = 0.1
    patience: int = 1000
    burn_in: int = 100
    returns: str = "ema"
    name: str = "emv"

    def __post_init__(self):
        if not 0 < self.alpha <= 1 or self.patience < 1 or self.burn_in < 0:
            raise ValueError("ES-EMV needs 0 < alpha <= 1, patience >= 1 and burn_in >= 0")
        if self.returns not in ("ema", "iterate"):
            raise ValueError(f"returns must be 'ema' or 'iterate', got {self.returns!r}")

    def init(self, view) -> EMVState:
        x0 = view.out
        inf = jnp.asarray(jnp.inf, jnp.float32)
        return EMVState(x0, jnp.zeros((), jnp.float32), inf, jnp.zeros((), jnp.int32), jnp.asarray(False),
                        jnp.asarray(-1, jnp.int32), x0)

    def update(self, s: EMVState, view) -> tuple[EMVState, dict]:
        x, t = view.out, view.t
        delta = x - s.mean
        mean = jnp.clip(s.mean + self.alpha * delta, 0.0, 1.0)
        variance = (1 - self.alpha) * (s.variance + self.alpha * jnp.sum(delta * delta))
        active = (t + 1 >= self.burn_in) & ~s.stopped
        better = active & (variance < s.var_min)
        patience = jnp.where(better, 0, s.patience + active.astype(jnp.int32))
        chosen = mean if self.returns == "ema" else x
        return EMVState(mean, variance, jnp.where(better, variance, s.var_min), patience,
                        s.stopped | (patience >= self.patience), jnp.where(better, t, s.t_stop),
                        jnp.where(better, chosen, s.x_stop)), {"emv_variance": variance}

