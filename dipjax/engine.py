"""The compiled reconstruction loop: :func:`reconstruct` drives any method of :mod:`dipjax.methods`.

``reconstruct(method, problem, key, steps)`` compiles one step once per (method, shape), runs it ``steps`` times with
no Python work in the hot path, keeps the history (the method's ``info`` scalars, PSNR and SSIM when ``x_true`` is
known) in preallocated device arrays, and reads back to the host only every ``sync_every`` steps (progress bar,
early exit). A batched problem (leading axis on every leaf, :func:`dipjax.problem.stack_problems`) runs as one
program in which every image has its own network, input, optimiser state and keys.

Keys. ``key`` splits into an init key and a run key; step ``t`` uses ``fold_in(run_key, t)``. By default every image
of a batch uses the same keys, so each image starts from the same weights and input (and sees the same input
perturbations) as a single-image run with that key: the protocol of the survey's Fig. 3. ``independent_keys=True``
gives image ``i`` the keys ``fold_in(·, i)`` instead.

Strategies, chosen in one place (:func:`default_strategy`) and overridable per call; results do not depend on them
beyond floating-point reassociation (``tests/test_engine.py`` checks this):

* ``batch``: ``"vmap"`` maps the step over the batch (one program; on accelerators the convolutions batch up), or
  ``"sequential"`` runs the single-image step program once per image per iteration (one compilation, reused).
* ``loop``: ``"host"`` calls the jitted step from a Python loop with the state donated, or ``"scan"`` runs chunks of
  ``chunk`` steps inside ``lax.scan``.

Measured on XLA CPU (2 cores, jax 0.10.2; ``python experiments/bench_engine.py --steps 20 --repeats 2``, 4 images
64×64 RGB, skip net width 64; numbers in ``experiments/results/bench_engine/metrics.json``), per iteration of the batch:

==========  =====  ==============  ==================
batch       loop   ms / iteration  vs sequential+host
==========  =====  ==============  ==================
sequential  host   107             1.00×
vmap        host   277             2.60×  (per-image weights make every convolution a grouped convolution)
sequential  scan   1142            10.7×  (a rolled ``lax.scan`` over the step is that much slower on XLA CPU)
vmap        scan   2749            25.8×
==========  =====  ==============  ==================

Hence CPU: ``sequential`` + ``host``. Accelerators: ``vmap`` + ``host``, which is not yet measured on a GPU in this
repository (none was available when this was written): run the benchmark there and update this table.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import time
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dipjax.metrics import psnr, ssim

BATCH_STRATEGIES = ("vmap", "sequential")
LOOPS = ("host", "scan")


def default_strategy(backend: str | None = None) -> tuple[str, str]:
    """``(batch, loop)`` strategy for a backend (``jax.default_backend()`` if None). See the module docstring."""
    backend = backend or jax.default_backend()
    if backend == "cpu":
        return "sequential", "host"
    return "vmap", "host"


class Tracker(NamedTuple):
    """Per-image bookkeeping the engine carries beside the method state (all on device)."""

    x_peak: Any  # oracle: the iterate with the highest PSNR so far (None without x_true)
    psnr_peak: Any
    t_peak: Any
    stop: Any  # stopper state or None


@dataclasses.dataclass
class Result:
    """What :func:`reconstruct` returns. Arrays are numpy; a batch adds a leading axis ``B`` to each.

    ``history[name][..., i]`` is the value after step ``i + 1``. Everything named ``*_oracle`` was chosen by looking at
    ``x_true`` and is not something the method could output. ``state`` is the final method state: one pytree (with a
    leading batch axis under ``vmap``), or a list with one state per image under the ``sequential`` strategy.
    ``init_seconds`` includes compiling ``init``; ``compile_seconds`` is the step's compilation (0 when cached).
    """

    x_final: np.ndarray
    history: dict[str, np.ndarray]
    steps: int
    compile_seconds: float
    init_seconds: float
    run_seconds: float
    strategy: tuple[str, str]
    state: Any
    x_peak_oracle: np.ndarray | None = None
    psnr_peak_oracle: np.ndarray | None = None
    iter_peak_oracle: np.ndarray | None = None
    x_stop: np.ndarray | None = None
    iter_stop: np.ndarray | None = None

    @property
    def seconds_per_step(self) -> float:
        return self.run_seconds / max(self.steps, 1)


def _init_tracker(method, stopper, problem, state) -> Tracker:
    x0 = method.estimate(state, problem)
    stop = stopper.init(x0) if stopper else None
    if problem.x_true is None:
        return Tracker(None, None, None, stop)
    return Tracker(x0, psnr(x0, problem.x_true), jnp.asarray(-1, jnp.int32), stop)


def _tracked_step(method, stopper, track_ssim, state, tracker: Tracker, problem, run_key, t):
    """One method step plus the engine's bookkeeping; ``t`` is the 0-based step index (traced).

    Returns ``(state, tracker, metrics)``: ``metrics`` holds the method's ``info`` scalars and, with ground truth,
    the PSNR and SSIM of the estimate after this step. The host loop collects them on device; ``lax.scan`` stacks them.
    """
    state, info = method.step(state, problem, jax.random.fold_in(run_key, t))
    x = method.estimate(state, problem)
    metrics = {k: jnp.asarray(v, jnp.float32) for k, v in info.items()}
    x_peak, psnr_peak, t_peak = tracker.x_peak, tracker.psnr_peak, tracker.t_peak
    if problem.x_true is not None:
        p = psnr(x, problem.x_true)
        metrics["psnr"] = p
        if track_ssim:
            metrics["ssim"] = ssim(x, problem.x_true)
        better = p > psnr_peak
        x_peak = jnp.where(better, x, x_peak)
        psnr_peak = jnp.where(better, p, psnr_peak)
        t_peak = jnp.where(better, t, t_peak)
    stop = stopper.update(tracker.stop, x, t) if stopper else None
    return state, Tracker(x_peak, psnr_peak, t_peak, stop), metrics


def _scan_chunk(step_fn, n):
    def run(state, tracker, problem, run_key, t0):
        def body(carry, t):
            state, tracker, metrics = step_fn(*carry, problem, run_key, t)
            return (state, tracker), metrics

        (state, tracker), metrics = jax.lax.scan(body, (state, tracker), t0 + jnp.arange(n, dtype=jnp.int32))
        return state, tracker, metrics  # metrics: time on axis 0
    return run


@functools.lru_cache(maxsize=32)
def _programs(method, stopper, track_ssim: bool, vmapped: bool, chunk: int):
    """The jitted init and step programs for one configuration. Cached (methods and stoppers are frozen, hashable
    dataclasses), so repeated runs of the same method on the same shapes reuse their compilations."""

    def init_one(k, p):
        state = method.init(k, p)
        return state, _init_tracker(method, stopper, p, state)

    def step_one(s, tr, p, k, t):
        return _tracked_step(method, stopper, track_ssim, s, tr, p, k, t)

    if vmapped:
        init_one, step_one = jax.vmap(init_one), jax.vmap(step_one, in_axes=(0, 0, 0, 0, None))
    step = jax.jit(step_one, donate_argnums=(0, 1))
    scan = jax.jit(_scan_chunk(step_one, chunk), donate_argnums=(0, 1)) if chunk > 1 else None
    return jax.jit(init_one), step, scan


_EXECUTABLES: collections.OrderedDict = collections.OrderedDict()


def _compile(jitted, args) -> tuple[Any, float]:
    """Ahead-of-time compile ``jitted`` for ``args`` and return ``(executable, seconds)``; a bounded cache makes a
    second run on the same shapes cost 0 s."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    key = (jitted, treedef, tuple((np.shape(x), str(x.dtype)) for x in leaves))
    if key in _EXECUTABLES:
        _EXECUTABLES.move_to_end(key)
        return _EXECUTABLES[key], 0.0
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
        compiled = jitted.lower(*args).compile()
    _EXECUTABLES[key] = compiled
    if len(_EXECUTABLES) > 64:
        _EXECUTABLES.popitem(last=False)
    return compiled, time.perf_counter() - t0


def reconstruct(method, problem, key, steps: int, *, stopper=None, batch: str | None = None, loop: str | None = None,
                chunk: int = 50, independent_keys: bool = False, track_ssim: bool = True, progress: bool = False,
                sync_every: int | None = None, stop_early: bool = False, desc: str | None = None) -> Result:
    """Run ``steps`` iterations of ``method`` on ``problem`` (one problem, or a batch with a leading axis).

    ``stopper``: an early-stopping rule (:mod:`dipjax.stopping`); with ``stop_early=True`` the run ends once every
    image's rule has fired. ``batch``/``loop``/``chunk``: execution strategy (default :func:`default_strategy`).
    ``progress``: a tqdm bar showing loss and PSNR (mean over the batch), refreshed every ``sync_every`` steps.
    """
    if int(steps) != steps or steps <= 0:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    steps = int(steps)
    default_batch, default_loop = default_strategy()
    batch, loop = batch or default_batch, loop or default_loop
    if batch not in BATCH_STRATEGIES or loop not in LOOPS:
        raise ValueError(f"unknown strategy ({batch!r}, {loop!r}); expected batch in {BATCH_STRATEGIES}, "
                         f"loop in {LOOPS}")
    n_images = problem.batch_size
    batched = n_images is not None
    init_key, run_key = jax.random.split(key)
    image_keys = (lambda k, i: jax.random.fold_in(k, i)) if independent_keys else (lambda k, i: k)

    vmapped = batched and batch == "vmap"
    n_chunk = min(chunk, steps) if loop == "scan" else 1
    init_program, step_program, scan_program = _programs(method, stopper, track_ssim, vmapped, n_chunk)

    t_init = time.perf_counter()
    if vmapped:
        init_keys = jnp.stack([image_keys(init_key, i) for i in range(n_images)])
        run_keys = jnp.stack([image_keys(run_key, i) for i in range(n_images)])
        per_image = problem.replace(batch_size=None)  # leaves keep the batch axis; vmap maps over it
        slots = [(*init_program(init_keys, per_image), per_image, run_keys)]
    else:
        subproblems = [problem[i] for i in range(n_images)] if batched else [problem]
        slots = [(*init_program(image_keys(init_key, i), p), p, image_keys(run_key, i))
                 for i, p in enumerate(subproblems)]
    jax.block_until_ready([s[:2] for s in slots])
    init_seconds = time.perf_counter() - t_init

    # Compile ahead of time, so the cost is reported on its own (0 s when this configuration ran before).
    args0 = (*slots[0], np.int32(0))
    compile_seconds = 0.0
    run_chunk = run_step = None
    if scan_program is not None:
        run_chunk, c = _compile(scan_program, args0)
        compile_seconds += c
    if loop == "host" or steps % n_chunk:
        run_step, c = _compile(step_program, args0)
        compile_seconds += c

    sync_every = sync_every or max(1, min(100, steps // 20))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=desc or method.name, leave=False, dynamic_ncols=True)
    t_run = time.perf_counter()
    t, last_sync = 0, 0
    pieces = [[] for _ in slots]  # per slot: (metrics on device, came from a scan chunk?)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
        while t < steps:
            use_chunk = loop == "scan" and steps - t >= n_chunk
            for i, (state, tracker, p, k) in enumerate(slots):
                if use_chunk:
                    state, tracker, metrics = run_chunk(state, tracker, p, k, np.int32(t))
                else:
                    state, tracker, metrics = run_step(state, tracker, p, k, np.int32(t))
                pieces[i].append((metrics, use_chunk))
                slots[i] = (state, tracker, p, k)
            t += n_chunk if use_chunk else 1
            if t - last_sync >= sync_every or t == steps:
                last_sync = t
                if bar is not None:
                    _update_bar(bar, [pc[-1] for pc in pieces], t)
                if stopper is not None and stop_early and all(bool(np.all(s[1].stop.stopped)) for s in slots):
                    break
    jax.block_until_ready([s[:2] for s in slots])
    run_seconds = time.perf_counter() - t_run
    if bar is not None:
        bar.close()

    estimate = jax.jit(jax.vmap(method.estimate) if vmapped else method.estimate)
    gather = (lambda xs: np.stack(xs)) if (batched and batch == "sequential") else (lambda xs: xs[0])
    states = [s[0] for s in slots]
    trackers = [s[1] for s in slots]
    x_final = gather([np.asarray(estimate(st, s[2])) for st, s in zip(states, slots)])
    def series(piece_list, name):  # time on the last axis
        return np.moveaxis(np.concatenate([np.asarray(m[name]) if chunked else np.asarray(m[name])[None]
                                           for m, chunked in piece_list]), 0, -1)

    history = {name: gather([series(pc, name) for pc in pieces]) for name in pieces[0][0][0]}
    result = Result(x_final=x_final, history=history, steps=t, compile_seconds=compile_seconds,
                    init_seconds=init_seconds, run_seconds=run_seconds, strategy=(batch, loop),
                    state=states[0] if len(states) == 1 else states)
    if trackers[0].x_peak is not None:
        result.x_peak_oracle = gather([np.asarray(tr.x_peak) for tr in trackers])
        result.psnr_peak_oracle = gather([np.asarray(tr.psnr_peak) for tr in trackers])
        result.iter_peak_oracle = gather([np.asarray(tr.t_peak) for tr in trackers]) + 1
    if stopper is not None:
        result.x_stop = gather([np.asarray(tr.stop.x_stop) for tr in trackers])
        result.iter_stop = gather([np.asarray(tr.stop.t_stop) for tr in trackers]) + 1
    return result


def _update_bar(bar, latest, t):
    """``latest``: per slot, the last ``(metrics, chunked)`` piece; shows batch means of the newest step."""
    def newest(name):
        return float(np.mean([np.asarray(m[name])[-1] if chunked else np.asarray(m[name]) for m, chunked in latest]))

    postfix = {"loss": newest("loss")}
    if "psnr" in latest[0][0]:
        postfix["psnr"] = newest("psnr")
    bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
    bar.update(t - bar.n)
