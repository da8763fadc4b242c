"""Monitors: what the engine computes beside a method at every step — metrics, the oracle peak, early stopping —
as small pure ``(init, update)`` pairs that compose like optax transformations.

A monitor is a frozen dataclass with

* ``init(view) -> state``: ``view`` is the :class:`StepView` before the first update (``t = -1``);
* ``update(state, view) -> (state, metrics)``: after each update; ``metrics`` is a dict of scalars the engine writes
  into the run's history (``{}`` for none);
* ``summary(state) -> dict``: what the run reports at the end (e.g. ``x_peak_oracle``, ``iter_stop``), iterations
  1-based;
* ``stopped(state)``: for early-stopping rules only, a boolean scalar — the rule has fired.

:func:`chain` composes monitors into one. The engine's default is ``chain(ImageQuality(), OraclePeak(),
FiniteGuard())``; an early-stopping rule from :mod:`dipjax.stopping` is appended to it.

What monitors look at (:class:`StepView`): ``estimate`` — what the method reports now, compared with the truth as
:func:`quality_image` makes it (its :meth:`~dipjax.operators.Operator.view`, clipped to [0, 1], the same for every
method); ``out`` — the raw network output of the step (``state.out``), which early-stopping rules watch, as ES-DIP
watches its network's output. Anything chosen by looking at the ground truth is labelled *oracle*.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from dipjax.metrics import psnr, ssim


class StepView(NamedTuple):
    """What a monitor sees after an update: its 0-based index ``t`` (−1 before the first), the step's network output
    ``out``, the method's ``estimate`` and the ``problem`` (operator, measurements, optional ground truth)."""

    t: jax.Array
    out: jax.Array
    estimate: jax.Array
    problem: Any


class Monitor(Protocol):
    name: str

    def init(self, view: StepView) -> Any: ...

    def update(self, state: Any, view: StepView) -> tuple[Any, dict[str, jax.Array]]: ...

    def summary(self, state: Any) -> dict[str, jax.Array]: ...


def quality_image(x, problem) -> jax.Array:
    """The image metrics compare with the ground truth: the operator's view of ``x`` (magnitude for complex
    images) clipped to [0, 1], as it is saved to PNG — the same for every method."""
    return jnp.clip(problem.operator.view(x), 0.0, 1.0)


def truth_image(problem) -> jax.Array:
    """The ground truth as metrics see it (the operator's view, not clipped)."""
    return problem.operator.view(problem.x_true)


@dataclasses.dataclass(frozen=True)
class ImageQuality:
    """PSNR (and SSIM unless ``ssim=False``: it costs real time at 512²) of the estimate at every step; nothing
    without ground truth."""

    ssim: bool = True
    name: str = "quality"

    def init(self, view):
        return ()

    def update(self, state, view):
        if view.problem.x_true is None:
            return state, {}
        x, ref = quality_image(view.estimate, view.problem), truth_image(view.problem)
        metrics = {"psnr": psnr(x, ref)}
        if self.ssim:
            metrics["ssim"] = ssim(x, ref)
        return state, metrics

    def summary(self, state):
        return {}


class PeakState(NamedTuple):
    x_peak: jax.Array
    psnr_peak: jax.Array
    t_peak: jax.Array


@dataclasses.dataclass(frozen=True)
class OraclePeak:
    """The iterate with the highest PSNR so far — an *oracle*: it looks at the ground truth, so it is not something
    the method could output. Summary: ``x_peak_oracle``, ``psnr_peak_oracle``, ``iter_peak_oracle`` (0 = the
    initial estimate)."""

    name: str = "oracle_peak"

    def init(self, view):
        if view.problem.x_true is None:
            return ()
        p = psnr(quality_image(view.estimate, view.problem), truth_image(view.problem))
        return PeakState(view.estimate, p, jnp.asarray(-1, jnp.int32))

    def update(self, state, view):
        if view.problem.x_true is None:
            return state, {}
        p = psnr(quality_image(view.estimate, view.problem), truth_image(view.problem))
        better = p > state.psnr_peak
        return PeakState(jnp.where(better, view.estimate, state.x_peak), jnp.where(better, p, state.psnr_peak),
                         jnp.where(better, view.t, state.t_peak)), {}

    def summary(self, state):
        if not isinstance(state, PeakState):
            return {}
        return {"x_peak_oracle": state.x_peak, "psnr_peak_oracle": state.psnr_peak,
                "iter_peak_oracle": state.t_peak + 1}


class FiniteState(NamedTuple):
    x_last_finite: jax.Array
    t_diverged: jax.Array  # 0-based step of the first non-finite estimate or output; -1 while all are finite


@dataclasses.dataclass(frozen=True)
class FiniteGuard:
    """Divergence, watched on the device: the metric ``finite`` (1 while the step's estimate and network output are
    finite, 0 from the first non-finite value on) and the last finite estimate. The engine reads ``finite`` with the
    rest of the history at every sync (no extra host round trip) and ends the run when every image has diverged.
    Summary: ``x_last_finite`` and ``iter_diverged`` (the 1-based iteration whose estimate was first non-finite;
    0 when the run stayed finite)."""

    name: str = "finite"

    def init(self, view):
        return FiniteState(view.estimate, jnp.asarray(-1, jnp.int32))

    def update(self, state, view):
        ok = jnp.all(jnp.isfinite(view.estimate)) & jnp.all(jnp.isfinite(view.out))
        alive = state.t_diverged < 0
        x = jnp.where(ok & alive, view.estimate, state.x_last_finite)
        t = jnp.where(alive & ~ok, view.t, state.t_diverged)
        return FiniteState(x, t), {"finite": (ok & alive).astype(jnp.float32)}

    def summary(self, state):
        return {"x_last_finite": state.x_last_finite,
                "iter_diverged": jnp.where(state.t_diverged < 0, 0, state.t_diverged + 1)}


@dataclasses.dataclass(frozen=True)
class Chain:
    """Several monitors run as one: a tuple of states, merged metrics and summaries (names must not clash); it has
    stopped when every early-stopping rule in it has fired (:func:`has_stopper` says whether it holds one)."""

    monitors: tuple
    name: str = "chain"

    def __post_init__(self):
        names = [m.name for m in self.monitors]
        if len(set(names)) != len(names):
            raise ValueError(f"monitors in a chain need distinct names, got {names}")

    def init(self, view):
        return tuple(m.init(view) for m in self.monitors)

    def update(self, state, view):
        new, metrics = [], {}
        for m, s in zip(self.monitors, state):
            s, mm = m.update(s, view)
            clash = set(mm) & set(metrics)
            if clash:
                raise ValueError(f"monitor {m.name!r} records {sorted(clash)}, which another monitor records too")
            new.append(s)
            metrics.update(mm)
        return tuple(new), metrics

    def summary(self, state):
        out = {}
        for m, s in zip(self.monitors, state):
            out.update(m.summary(s))
        return out

    @property
    def has_stopper(self) -> bool:
        return any(has_stopper(m) for m in self.monitors)

    def stopped(self, state):
        return jnp.all(jnp.stack([m.stopped(s) for m, s in zip(self.monitors, state) if has_stopper(m)]))


def has_stopper(monitor) -> bool:
    """Whether ``monitor`` is, or holds, an early-stopping rule (one with ``stopped``)."""
    return monitor.has_stopper if isinstance(monitor, Chain) else hasattr(monitor, "stopped")


def chain(*monitors) -> Chain:
    """Compose monitors (a nested :class:`Chain` is flattened)."""
    flat = []
    for m in monitors:
        flat.extend(m.monitors if isinstance(m, Chain) else (m,))
    return Chain(tuple(flat))


def default_monitors(track_ssim: bool = True, stopper=None) -> Chain:
    """PSNR (and SSIM), the oracle peak, the divergence guard, and ``stopper`` if given (the first two do nothing
    without ground truth)."""
    return chain(ImageQuality(ssim=track_ssim), OraclePeak(), FiniteGuard(),
                 *((stopper,) if stopper is not None else ()))
