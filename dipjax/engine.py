"""The compiled reconstruction loop: :func:`reconstruct` drives any method of :mod:`dipjax.methods`.

``reconstruct(method, problem, key, steps)`` compiles one step once per (method, monitors, shapes) and runs it
``steps`` times with no Python work in the hot path. Beside the method it runs a :mod:`monitor <dipjax.monitors>`
(PSNR/SSIM, the oracle peak and an early-stopping rule by default). A step is

    state, info = method.step(state, problem, fold_in(run_key, t))
    monitor_state, metrics = monitor.update(monitor_state, StepView(t, state.out, method.estimate(state), problem))
    history[name][t % 100] = value    for every scalar of info and metrics

so the history lives in a preallocated device ring buffer (100 entries per metric, more if ``sync_every`` asks), which
the host copies into a preallocated array every ``sync_every`` steps (progress bar, early exit): one small transfer
per metric per sync, the same cost at step 150,000 as at step 1, and one compilation whatever the run's length. A batched problem (leading axis on every leaf,
:func:`dipjax.problem.stack_problems`) runs as one program in which every image has its own network, input,
optimiser state and keys.

Iterations (the convention of :mod:`dipjax.methods.base`): ``history[name][..., k - 1]`` belongs to iteration ``k``,
the state after the ``k``-th update; monitors report iterations 1-based (``iter_peak_oracle``, ``iter_stop``; 0 is the
initial estimate).

Keys. ``key`` splits into an init key and a run key; step ``t`` (0-based) uses ``fold_in(run_key, t)``. By default
every image of a batch uses the same keys, so each image starts from the same weights and input (and sees the same
input perturbations) as a single-image run with that key: the protocol of the survey's Fig. 3.
``independent_keys=True`` gives image ``i`` the keys ``fold_in(·, i)`` instead.

Your own loop: :func:`make_program` returns the jitted ``init`` and ``step`` the engine uses,

.. code-block:: python

    prog = make_program(method, default_monitors(), problem)
    init_key, run_key = jax.random.split(key)
    carry = prog.init(init_key, problem)
    for t in range(steps):
        carry = prog.step(carry, problem, run_key, t)           # carry.state: the method state
        if (t + 1) % prog.history_length == 0:
            recent = jax.device_get(carry.history)              # metric -> its last history_length values

Strategies, chosen in one place (:func:`default_strategy`) and overridable per call; results do not depend on them
beyond floating-point reassociation (``tests/test_engine.py`` checks this):

* ``batch``: ``"vmap"`` maps the step over the batch (one program; on accelerators the convolutions batch up), or
  ``"sequential"`` runs the single-image step program once per image per iteration (one compilation, reused).
* ``loop``: ``"host"`` calls the jitted step from a Python loop with the carry donated, or ``"scan"`` runs
  ``sync_every`` steps inside one ``lax.scan``.

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

Hence CPU: ``sequential`` + ``host``. On a GPU the order turns around: per iteration of the batch on one NVIDIA H200
(jax 0.11.2; ``experiments/gpu_engine_check.sh``, numbers in ``experiments/results/bench_engine_gpu/``), 4 images
64² RGB, width 64: sequential+host 37.1 ms, vmap+host 10.7, sequential+scan 11.3, vmap+scan 6.0; 8 images 128² RGB,
width 128: 55.8, 24.9, 22.7, 20.1 ms. Host dispatch dominates such small steps, so accelerators default to ``vmap``
+ ``scan`` (the fastest in both).

Multi-stage methods (:class:`~dipjax.methods.OptimalEyeSurgeon`) have a ``run(problem, key, steps, **options)``
pipeline, which :func:`reconstruct` calls in their place.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import signal
import threading
import time
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dipjax.checkpoint import load_checkpoint, save_checkpoint
from dipjax.memory import check_fits, output_bytes, run_bytes
from dipjax.monitors import StepView, default_monitors, has_stopper

BATCH_STRATEGIES = ("vmap", "sequential")
LOOPS = ("host", "scan")


def default_strategy(backend: str | None = None) -> tuple[str, str]:
    """``(batch, loop)`` strategy for a backend (``jax.default_backend()`` if None). See the module docstring."""
    backend = backend or jax.default_backend()
    if backend == "cpu":
        return "sequential", "host"
    return "vmap", "scan"


class PipelineInterrupted(Exception):
    """A signal ended a multi-stage pipeline (OES) at a step boundary; the stages' checkpoints are saved (when it was
    given one) and ``resume=True`` continues it. ``signum``: SIGINT or SIGTERM."""

    def __init__(self, signum: int, where: str):
        self.signum = signum
        super().__init__(where)


class Carry(NamedTuple):
    """Everything one image's run carries from step to step (on device)."""

    state: Any  # the method state
    monitor: Any  # the monitor's state
    history: dict  # name -> float32 ring buffer of the newest values (entry t % its length)


@dataclasses.dataclass
class Result:
    """What :func:`reconstruct` returns. Arrays are numpy; a batch adds a leading axis ``B`` to each.

    ``history[name][..., k - 1]`` is the value at iteration ``k``. ``summary`` holds the monitors' reports
    (``x_peak_oracle``, ``psnr_peak_oracle``, ``iter_peak_oracle``, ``x_stop``, ``iter_stop``, also attributes);
    everything named ``*_oracle`` was chosen by looking at ``x_true`` and is not something the method could output.
    ``interrupted`` is the signal number that ended an ``interruptible`` run before ``steps`` (0 otherwise).
    ``state`` is the final method state: one pytree (with a leading batch axis under ``vmap``), or a list with one
    state per image under the ``sequential`` strategy. ``init_seconds`` includes compiling ``init``;
    ``compile_seconds`` is the step's compilation (0 when cached). ``sync_times`` is ``(iteration, seconds since the
    run started)`` at every sync. ``extras`` holds what a pipeline adds (OES: its masks). ``memory_bytes``: XLA's
    estimate of the run's peak memory (:mod:`dipjax.memory`), checked against the free memory before the run.
    """

    x_final: np.ndarray
    history: dict[str, np.ndarray]
    steps: int
    compile_seconds: float
    init_seconds: float
    run_seconds: float
    strategy: tuple[str, str]
    state: Any
    summary: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    sync_times: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 2)))
    extras: dict = dataclasses.field(default_factory=dict)
    interrupted: int = 0  # the signal (SIGINT, SIGTERM) that ended an ``interruptible`` run early; 0 if none
    memory_bytes: int | None = None  # XLA's estimate of the run's peak device memory (dipjax.memory), if known

    @property
    def seconds_per_step(self) -> float:
        return self.run_seconds / max(self.steps, 1)

    x_peak_oracle = property(lambda self: self.summary.get("x_peak_oracle"))
    psnr_peak_oracle = property(lambda self: self.summary.get("psnr_peak_oracle"))
    iter_peak_oracle = property(lambda self: self.summary.get("iter_peak_oracle"))
    x_stop = property(lambda self: self.summary.get("x_stop"))
    iter_stop = property(lambda self: self.summary.get("iter_stop"))


def stack_results(results: list[Result]) -> Result:
    """Per-image results of the same run settings as one batched result (leading axis on every array)."""
    stack = lambda xs: np.stack([np.asarray(x) for x in xs])  # noqa: E731
    first = results[0]
    return Result(x_final=stack([r.x_final for r in results]),
                  history={k: stack([r.history[k] for r in results]) for k in first.history},
                  steps=first.steps, compile_seconds=sum(r.compile_seconds for r in results),
                  init_seconds=sum(r.init_seconds for r in results), run_seconds=sum(r.run_seconds for r in results),
                  strategy=first.strategy, state=[r.state for r in results],
                  summary={k: stack([r.summary[k] for r in results]) for k in first.summary},
                  sync_times=first.sync_times, extras={},
                  memory_bytes=max((r.memory_bytes for r in results if r.memory_bytes is not None), default=None))


class Program(NamedTuple):
    """The jitted programs of one run configuration (see the module docstring for a loop of your own).

    ``init(key, problem) -> Carry``; ``step(carry, problem, run_key, t) -> Carry`` (donates ``carry``);
    ``scan(length)`` the jitted ``(carry, problem, run_key, t0) -> Carry`` that runs ``length`` steps from ``t0``;
    ``summary(carry) -> dict``; ``stopped(carry)`` (with an early-stopping rule) whether it fired; ``names`` are the
    metrics the history records, each in a ring buffer of ``history_length`` entries (read it at least that
    often); ``estimate(state, problem)`` the method's estimate."""

    init: Callable
    step: Callable
    scan: Callable
    summary: Callable
    stopped: Callable | None
    names: tuple[str, ...]
    history_length: int
    estimate: Callable | None = None


def _view(method, state, problem, t) -> StepView:
    return StepView(jnp.asarray(t, jnp.int32), state.out, method.estimate(state, problem), problem)


def _update(method, monitor, state, mstate, problem, run_key, t):
    """One method step and the monitor's update: ``(state, monitor state, metrics)``."""
    state, info = method.step(state, problem, jax.random.fold_in(run_key, t))
    mstate, metrics = monitor.update(mstate, _view(method, state, problem, t))
    return state, mstate, {k: jnp.asarray(v, jnp.float32) for k, v in {**info, **metrics}.items()}


@functools.lru_cache(maxsize=32)
def _traced_once(method, monitor):
    """The method's and monitor's start and one update as jitted functions, shared by :func:`_metric_names` and every
    program of the configuration: JAX keeps a jitted function's trace by its argument types, so the network is
    traced once for all of them (vmapped and scanned programs call them with the same types inside). The programs
    call them nested and XLA inlines the calls: the compiled programs compute what the direct calls did (five
    configurations bit-identical, README "Tracing once")."""
    def start(key, problem):
        state = method.init(key, problem)
        return state, monitor.init(_view(method, state, problem, -1))

    def update(state, mstate, problem, run_key, t):
        return _update(method, monitor, state, mstate, problem, run_key, t)

    return jax.jit(start), jax.jit(update)


@functools.lru_cache(maxsize=32)
def _metric_names(method, monitor, abstract_problem) -> tuple[str, ...]:
    """The scalars one step records (the method's ``info`` and the monitor's metrics), by abstract evaluation."""
    start, update = _traced_once(method, monitor)

    def one_step(key, problem):
        state, mstate = start(key, problem)
        return update(state, mstate, problem, key, jnp.asarray(0, jnp.int32))[2]

    return tuple(sorted(jax.eval_shape(one_step, jax.random.key(0), abstract_problem.value)))


#: Entries of the device history buffer (at least ``sync_every``): the step programs do not depend on how often the
#: host syncs, so runs of different lengths share one compilation.
HISTORY_BUFFER = 100


@functools.lru_cache(maxsize=32)
def _step_functions(method, monitor, buffer: int, names: tuple[str, ...]):
    """The un-jitted single-image init and step (one pair per configuration, so jit caches stay valid)."""
    start, update = _traced_once(method, monitor)

    def init_one(key, problem):
        state, mstate = start(key, problem)
        return Carry(state, mstate, {k: jnp.zeros((buffer,), jnp.float32) for k in names})

    def step_one(carry, problem, run_key, t):
        state, mstate, metrics = update(carry.state, carry.monitor, problem, run_key, t)
        slot = t % buffer
        return Carry(state, mstate, {k: carry.history[k].at[slot].set(metrics[k]) for k in names})

    return init_one, step_one


#: The mesh axis a batch of images is sharded over (``reconstruct(devices=…)``).
IMAGE_AXIS = "images"


def image_mesh(devices, n_images: int):
    """A 1-D mesh over the first ``D`` of ``devices``, ``D`` the largest count ≤ ``len(devices)`` dividing
    ``n_images`` (None when that is 1: the batch stays on ``devices[0]``)."""
    count = max(d for d in range(1, min(len(devices), n_images) + 1) if n_images % d == 0)
    return Mesh(np.asarray(devices[:count]), (IMAGE_AXIS,)) if count > 1 else None


def _one_by_one(fn, mapped: int):
    """``fn`` over the leading axis of its first ``mapped`` arguments, one image after another, results stacked:
    the ``sequential`` strategy inside one program (a device's share of a sharded batch)."""
    def each(*args):
        n = jax.tree_util.tree_leaves(args[0])[0].shape[0]
        outs = [fn(*[jax.tree_util.tree_map(lambda a, j=j: a[j], x) for x in args[:mapped]], *args[mapped:])
                for j in range(n)]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outs)

    return each


def _batched(fn, vmapped: bool, mesh, mapped: int):
    """``fn`` of one image over a batch: ``vmap``, or under a mesh a ``shard_map`` whose devices each run their
    share (``vmap`` or one after another); ``fn`` itself when neither (one image, or one carry per image)."""
    def mapped_fn(*args):
        return jax.vmap(fn, (0,) * mapped + (None,) * (len(args) - mapped))(*args)

    if mesh is None:
        return mapped_fn if vmapped else fn
    local = mapped_fn if vmapped else _one_by_one(fn, mapped)
    spec = PartitionSpec(IMAGE_AXIS)

    def sharded(*args):
        specs = (spec,) * mapped + (PartitionSpec(),) * (len(args) - mapped)
        return jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=spec)(*args)

    return sharded


@functools.lru_cache(maxsize=32)
def _cached_program(method, monitor, vmapped: bool, buffer: int, names: tuple[str, ...], mesh=None) -> Program:
    init_one, step_one = _step_functions(method, monitor, buffer, names)

    def summary_one(carry):
        return monitor.summary(carry.monitor)

    stopped_one = (lambda carry: monitor.stopped(carry.monitor)) if has_stopper(monitor) else None
    init_one, summary_one = _batched(init_one, vmapped, mesh, 2), _batched(summary_one, vmapped, mesh, 1)
    step_one = _batched(step_one, vmapped, mesh, 3)
    stopped_one = stopped_one and _batched(stopped_one, vmapped, mesh, 1)
    return Program(jax.jit(init_one), jax.jit(step_one, donate_argnums=0),
                   functools.partial(_scan_program, method, monitor, vmapped, buffer, names, mesh=mesh),
                   jax.jit(summary_one), stopped_one and jax.jit(stopped_one), names, buffer,
                   jax.jit(_batched(method.estimate, vmapped, mesh, 2)))


@functools.lru_cache(maxsize=32)
def _scan_program(method, monitor, vmapped: bool, buffer: int, names: tuple[str, ...], length: int, mesh=None):
    """``scan(carry, problem, run_key, t0)``: ``length`` steps inside one ``lax.scan`` (compiled per length)."""
    _, step_one = _step_functions(method, monitor, buffer, names)

    def scan_one(carry, problem, run_key, t0):
        def body(c, t):
            return step_one(c, problem, run_key, t), None

        return jax.lax.scan(body, carry, t0 + jnp.arange(length, dtype=jnp.int32))[0]

    return jax.jit(_batched(scan_one, vmapped, mesh, 3), donate_argnums=0)


class _Abstract:
    """A pytree of ShapeDtypeStructs, hashable by structure, shapes and dtypes (a cache key)."""

    def __init__(self, tree):
        self.value = tree
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        self._key = (treedef, tuple((x.shape, str(x.dtype)) for x in leaves))

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, _Abstract) and other._key == self._key


def make_program(method, monitor, problem, *, vmapped: bool = False, sync_every: int = HISTORY_BUFFER,
                 mesh=None) -> Program:
    """The jitted programs for ``method`` with ``monitor`` on problems shaped like ``problem`` (a single problem;
    with ``vmapped=True`` or a ``mesh`` one whose leaves have a leading batch axis, sharded over the mesh's
    ``IMAGE_AXIS``). The history records the method's ``info`` scalars and the monitor's metrics
    (``Program.names``) in a buffer of ``max(HISTORY_BUFFER, sync_every)`` entries."""
    single = problem
    if vmapped or mesh is not None:
        single = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), problem)
    abstract = _Abstract(jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), single))
    names = _metric_names(method, monitor, abstract)
    return _cached_program(method, monitor, vmapped, max(HISTORY_BUFFER, int(sync_every)), names, mesh)


_EXECUTABLES: collections.OrderedDict = collections.OrderedDict()


def clear_caches() -> None:
    """Drop every program the engine keeps compiled (and JAX's own caches), releasing their memory: each compiled
    XLA executable holds code and a few memory mappings, and a long session that compiles thousands of programs can
    run into the kernel's limit on mappings."""
    _EXECUTABLES.clear()
    for cached in (_traced_once, _metric_names, _step_functions, _cached_program, _scan_program):
        cached.cache_clear()
    jax.clear_caches()


def _compile(jitted, args) -> tuple[Any, float]:
    """Ahead-of-time compile ``jitted`` for ``args`` and return ``(executable, seconds)``; a bounded cache makes a
    second run on the same shapes and placement cost 0 s."""
    leaves, treedef = jax.tree_util.tree_flatten(args)
    key = (jitted, treedef, tuple((np.shape(x), str(x.dtype), str(getattr(x, "sharding", None))) for x in leaves))
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


def _check_memory(programs, what: str, *, n_carries: int, carry_bytes: int, mesh, devices) -> int | None:
    """The bytes ``programs`` need, run on one carry while ``n_carries`` are held (CPU devices of a mesh share the
    host's memory); :class:`dipjax.memory.RunTooLarge` when the device has less free."""
    device = mesh.devices.flat[0] if mesh is not None else devices[0] if devices else jax.devices()[0]
    needed = run_bytes(programs, carry_bytes, n_carries)
    if needed is not None and mesh is not None and device.platform == "cpu":
        needed *= mesh.devices.size
    check_fits(needed, device, what + (f" with {n_carries} images held" if n_carries > 1 else ""))
    return needed


@contextlib.contextmanager
def _interrupt_requests(enabled: bool):
    """While active, SIGINT and SIGTERM set ``flag["signal"]`` instead of ending the process, so the run loop can
    stop at the next step boundary (a second signal raises KeyboardInterrupt at once). Only in the main thread,
    where Python delivers signals; elsewhere, and when not ``enabled``, nothing changes."""
    flag = {"signal": 0}
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        if flag["signal"]:
            raise KeyboardInterrupt
        flag["signal"] = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def reconstruct(method, problem, key, steps: int, *, stopper=None, monitor=None, track_ssim: bool = True,
                batch: str | None = None, loop: str | None = None, independent_keys: bool = False,
                progress: bool = False, sync_every: int | None = None, stop_early: bool = False,
                desc: str | None = None, interruptible: bool = False, checkpoint: str | None = None,
                checkpoint_every: int = 0, resume: bool = False, keep_checkpoint: bool = False,
                devices=None) -> Result:
    """Run ``steps`` iterations of ``method`` on ``problem`` (one problem, or a batch with a leading axis).

    ``monitor``: what to compute beside the method (default :func:`~dipjax.monitors.default_monitors`: PSNR, SSIM
    unless ``track_ssim=False``, the oracle peak); ``stopper``: an early-stopping rule (:mod:`dipjax.stopping`)
    added to it; with ``stop_early=True`` the run ends once every image's rule has fired (checked at syncs). With
    the default monitors the run also ends at the first sync at which every image has diverged (a non-finite
    estimate or network output: ``summary["iter_diverged"]``, and ``summary["x_last_finite"]`` the last finite
    estimate).
    ``batch``/``loop``: execution strategy (default :func:`default_strategy`). ``sync_every``: steps between host
    syncs (default ``min(100, max(1, steps // 20))``). ``progress``: a tqdm bar with loss and PSNR (batch means).
    ``interruptible=True`` (the CLI's choice): SIGINT or SIGTERM end the run at the next step boundary with
    everything up to it synced, and ``Result.interrupted`` names the signal.

    ``checkpoint``: a file (:mod:`dipjax.checkpoint`) written at the first sync after every ``checkpoint_every``
    steps (0: never on a schedule) and when a signal ends the run; ``resume=True`` continues from it (a run of the
    same method, problem, key and ``steps``; the result is bit for bit that of the uninterrupted run).
    ``keep_checkpoint=True`` also writes it when the run ends (a pipeline's finished stage: resuming it gives the
    result back without a step). A multi-stage pipeline (OES) checkpoints each stage beside ``checkpoint`` and, when
    a signal ends an ``interruptible`` run, raises :class:`PipelineInterrupted`.

    ``devices``: spread a batch over these devices (default: the default device). The batch axis is sharded over a
    :class:`jax.sharding.Mesh` of the first ``D`` devices, ``D`` the largest count that divides the batch, and one
    SPMD program (:func:`jax.shard_map`, compiled once per mesh) runs the backend's strategy on each device's
    share: ``sequential`` steps its images one after another, ``vmap`` maps over them. Every image gets the keys,
    and so the numbers, of a one-image run, to float rounding (XLA fuses the SPMD program differently;
    ``tests/test_dataset.py`` checks the PSNRs); ``Result.state`` is the stacked state.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    steps = int(steps)
    if hasattr(method, "run"):  # a multi-stage pipeline
        return method.run(problem, key, steps, stopper=stopper, monitor=monitor, track_ssim=track_ssim, batch=batch,
                          loop=loop, independent_keys=independent_keys, progress=progress, sync_every=sync_every,
                          desc=desc, interruptible=interruptible, checkpoint=checkpoint,
                          checkpoint_every=checkpoint_every, resume=resume, devices=devices)
    default_batch, default_loop = default_strategy()
    batch, loop = batch or default_batch, loop or default_loop
    if batch not in BATCH_STRATEGIES or loop not in LOOPS:
        raise ValueError(f"unknown strategy ({batch!r}, {loop!r}); expected batch in {BATCH_STRATEGIES}, "
                         f"loop in {LOOPS}")
    if monitor is None:
        monitor = default_monitors(track_ssim, stopper)
    elif stopper is not None:
        from dipjax.monitors import chain

        monitor = chain(monitor, stopper)
    if stop_early and not has_stopper(monitor):
        raise ValueError("stop_early needs an early-stopping rule (stopper=...)")
    if (resume or checkpoint_every) and checkpoint is None:
        raise ValueError("resume and checkpoint_every need a checkpoint file (checkpoint=...)")
    sync_every = int(sync_every or min(100, max(1, steps // 20)))
    n_images = problem.batch_size
    batched = n_images is not None
    init_key, run_key = jax.random.split(key)
    image_keys = (lambda k, i: jax.random.fold_in(k, i)) if independent_keys else (lambda k, i: k)

    mesh = image_mesh(devices, n_images) if batched and devices else None
    stacked = batched and (batch == "vmap" or mesh is not None)  # one carry holding the whole batch
    if stacked:
        per_image = problem.replace(batch_size=None)  # leaves keep the batch axis; vmap/shard_map map over it
        slots = [(per_image, jnp.stack([image_keys(init_key, i) for i in range(n_images)]),
                  jnp.stack([image_keys(run_key, i) for i in range(n_images)]))]
        shares = [np.arange(n_images)]
        if mesh is not None:
            slots = [jax.device_put(slots[0], NamedSharding(mesh, PartitionSpec(IMAGE_AXIS)))]
    else:  # one carry per image
        subproblems = [problem[i] for i in range(n_images)] if batched else [problem]
        shares = list(range(n_images)) if batched else [None]
        slots = [(p, image_keys(init_key, i), image_keys(run_key, i)) for i, p in enumerate(subproblems)]
        if devices:
            slots = jax.device_put(slots, devices[0])
    vmapped = stacked and batch == "vmap"
    prog = make_program(method, monitor, slots[0][0], vmapped=vmapped, sync_every=sync_every, mesh=mesh)

    # Each program is compiled ahead of time and checked against the memory available before it runs
    # (dipjax.memory): a run too large for the machine is refused before it computes anything.
    t_init = time.perf_counter()
    run_init, _ = _compile(prog.init, (slots[0][1], slots[0][0]))
    memory = functools.partial(_check_memory, n_carries=len(slots), mesh=mesh, devices=devices,
                               carry_bytes=output_bytes(run_init))
    memory_bytes = memory([run_init], "its init program")
    carries = [run_init(k_init, p) for p, k_init, _ in slots]
    jax.block_until_ready(carries)
    init_seconds = time.perf_counter() - t_init
    names = prog.names

    # Compile ahead of time, so the cost is reported on its own (0 s when this configuration ran before).
    args0 = (carries[0], slots[0][0], slots[0][2], np.int32(0))
    compile_seconds = 0.0
    run_scan = run_step = None
    use_scan = loop == "scan" and steps >= sync_every
    if use_scan:
        run_scan, c = _compile(prog.scan(sync_every), args0)
        compile_seconds += c
    if not use_scan or steps % sync_every:
        run_step, c = _compile(prog.step, args0)
        compile_seconds += c
    step_bytes = memory([f for f in (run_scan, run_step) if f is not None], "its step program")
    memory_bytes = max(filter(None, (memory_bytes, step_bytes)), default=None)

    lead = (n_images,) if batched else ()
    history = {k: np.full(lead + (steps,), np.nan, np.float32) for k in names}
    bar = None
    sync_times = []
    t_run = time.perf_counter()
    t = last_sync = 0
    if resume:
        t, carries = load_checkpoint(checkpoint, carries, history, steps)
        if mesh is not None:
            carries = jax.device_put(carries, NamedSharding(mesh, PartitionSpec(IMAGE_AXIS)))
        elif devices:
            carries = jax.device_put(carries, devices[0])
        if use_scan and t % sync_every and steps - t >= sync_every:
            raise ValueError(f"the checkpoint is at step {t}, not a multiple of sync_every = {sync_every}: resume "
                             "it with the strategy and sync_every that wrote it")
        last_sync = t
    saved = t
    with warnings.catch_warnings(), _interrupt_requests(interruptible) as interrupt:
        warnings.filterwarnings("ignore", message=".*donated buffers were not usable.*")
        if progress:  # shown once signals are handled: from then on, Ctrl-C ends the run cleanly
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, initial=t, desc=desc or method.name, leave=False, dynamic_ncols=True)
        while t < steps:
            chunk = use_scan and steps - t >= sync_every
            for i, (p, _, k_run) in enumerate(slots):
                carries[i] = run_scan(carries[i], p, k_run, np.int32(t)) if chunk else \
                    run_step(carries[i], p, k_run, np.int32(t))
            t += sync_every if chunk else 1
            interrupted = bool(interrupt["signal"]) and t < steps
            if interrupted or t % sync_every == 0 or t == steps:  # multiples of sync_every: the same after a resume
                _read_history(carries, shares, history, last_sync, t, prog.history_length)
                last_sync = t
                if interrupted:
                    if checkpoint is not None:
                        save_checkpoint(checkpoint, carries, history, t, steps)
                    break
                sync_times.append((t, time.perf_counter() - t_run))
                if bar is not None:
                    _update_bar(bar, history, t)
                if checkpoint_every and t // checkpoint_every > saved // checkpoint_every and t < steps:
                    save_checkpoint(checkpoint, carries, history, t, steps)
                    saved = t
                if stop_early and all(bool(np.all(jax.device_get(prog.stopped(c)))) for c in carries):
                    break
                if "finite" in history and np.all(history["finite"][..., t - 1] == 0):
                    break  # every image has diverged (FiniteGuard's flag stays 0 once it drops): the rest is NaN
    if keep_checkpoint and checkpoint is not None and not (interrupt["signal"] and t < steps):
        save_checkpoint(checkpoint, carries, history, t, steps)
    jax.block_until_ready(carries)
    run_seconds = time.perf_counter() - t_run
    if bar is not None:
        bar.close()

    estimate = prog.estimate
    gather = np.concatenate if stacked else np.stack if batched else (lambda xs: xs[0])
    x_final = gather([np.asarray(estimate(c.state, p)) for c, (p, _, _) in zip(carries, slots)])
    summaries = [jax.device_get(prog.summary(c)) for c in carries]
    summary = {k: gather([np.asarray(s[k]) for s in summaries]) for k in summaries[0]}
    states = [c.state for c in carries]
    return Result(x_final=x_final, history={k: v[..., :t] for k, v in history.items()}, steps=t,
                  compile_seconds=compile_seconds, init_seconds=init_seconds, run_seconds=run_seconds,
                  strategy=(batch, loop), state=states[0] if len(states) == 1 else states, summary=summary,
                  sync_times=np.asarray(sync_times, np.float64).reshape(-1, 2),
                  interrupted=interrupt["signal"] if t < steps else 0, memory_bytes=memory_bytes)


def _read_history(carries, shares, history, start, stop, buffer):
    """Copy iterations ``start … stop − 1`` from the carries' ring buffers into the host ``history``; ``shares[i]``
    is the batch index (or, vmapped, the indices) of carry ``i``, None for a single problem."""
    slots = np.arange(start, stop) % buffer
    for c, share in zip(carries, shares):
        for k, buf in jax.device_get(c.history).items():
            if share is None:
                history[k][start:stop] = buf[slots]
            elif np.ndim(share):
                history[k][share, start:stop] = buf[:, slots]
            else:
                history[k][share, start:stop] = buf[slots]


def _update_bar(bar, history, t):
    """Batch means of the newest loss and PSNR."""
    postfix = {k: float(np.mean(history[k][..., t - 1])) for k in ("loss", "psnr") if k in history}
    bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
    bar.update(t - bar.n)
