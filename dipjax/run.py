"""One reconstruction run, fully resolved: :class:`RunConfig` is built once (by the CLI, or by a script) and
everything else reads it — which method with which hyper-parameters, how many steps, which early-stopping rule,
which execution strategy. ``RunConfig.resolved(method)`` is the JSON that ``dipjax reconstruct --dry-run`` prints and
that ``metrics.json`` records, so a run can be reproduced from its own output.

.. code-block:: python

    run = RunConfig(task=task_config("sr", factor=8), method="dip", images=("camera",), size=64)
    images, labels = run.load_images()
    method = run.build_method(images[0].shape)            # DIP, σ_p = 0.05 (the ×8 preset)
    problems = run.simulate(images)
    result = run.execute(method, problems)                 # run.steps = 4000, the published ×8 budget
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from dipjax.data import image_label, load_image, unique_labels
from dipjax.engine import default_strategy, reconstruct
from dipjax.methods import build_method, default_steps, describe, get_method, resolve_preset
from dipjax.metrics import SSIM_MIN_SIDE
from dipjax.problem import stack_problems
from dipjax.stopping import ExponentialMovingVariance, WindowedMovingVariance
from dipjax.tasks import TaskConfig, degradation_key
from dipjax.validation import require

STOPPERS = ("wmv", "emv")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. ``steps=None`` and ``batch``/``loop=None`` resolve to the method's published
    budget for the task and the backend's strategy; ``method_options`` are the user's hyper-parameters
    (field → value, e.g. ``{"lr": 0.001}``), applied over the preset."""

    task: TaskConfig
    method: str = "dip"
    images: tuple[str, ...] = ("camera",)
    size: int = 256
    channels: int | None = None
    width: int | None = None
    scales: int | None = None
    method_options: tuple[tuple[str, Any], ...] = ()
    steps: int | None = None
    seed: int = 0
    stop: str | None = None
    stop_window: int = 100
    stop_patience: int = 1000
    stop_early: bool = False
    independent_keys: bool = False
    batch: str | None = None
    loop: str | None = None
    track_ssim: bool = True

    def __post_init__(self):
        get_method(self.method)
        object.__setattr__(self, "images", tuple(self.images))
        object.__setattr__(self, "method_options", tuple(sorted(dict(self.method_options).items())))
        require(len(self.images) > 0 or self.task.reads_file(), "image",
                "needs at least one image (or --dicom; for --task mri, --kspace FILE.h5)")
        require(not (self.images and self.task.reads_file()), "image", "does not apply to measured data (--kspace)")
        for name in ("size", "stop_window", "stop_patience"):
            v = getattr(self, name)
            require(isinstance(v, int) and v > 0, name, f"must be a positive integer, got {v!r}")
        require(self.size >= SSIM_MIN_SIDE, "size",
                f"must be at least {SSIM_MIN_SIDE} (SSIM's window), got {self.size}")
        require(isinstance(self.seed, int) and 0 <= self.seed < 2**63, "seed",
                f"must be an integer from 0 to 2^63 - 1, got {self.seed!r}")
        require(self.channels in (None, 1, 3), "channels", f"must be 1, 3 or None, got {self.channels!r}")
        require(self.stop in (None, *STOPPERS), "stop", f"must be one of {', '.join(STOPPERS)}, got {self.stop!r}")
        require(not self.stop_early or self.stop is not None, "stop_early", "needs an early-stopping rule (--stop)")
        if self.steps is None:
            object.__setattr__(self, "steps", default_steps(self.method, self.task))
        require(isinstance(self.steps, int) and self.steps > 0, "steps",
                f"must be a positive integer, got {self.steps!r}")
        batch, loop = default_strategy()
        object.__setattr__(self, "batch", self.batch or batch)
        object.__setattr__(self, "loop", self.loop or loop)

    def load_images(self):
        """``(images, labels)``: every ``--image`` centre-cropped and resized to ``size``, with unique labels."""
        images = [load_image(spec, self.size, self.channels or self.task.input_channels) for spec in self.images]
        return images, unique_labels(self.images)

    def build_method(self, image_shape):
        """The method with its preset for the task, the user's width/scales and hyper-parameters, for loaded images
        of ``image_shape`` (the task says what its operator makes of them: complex MRI images have 2 channels)."""
        return build_method(self.method, self.task, self.task.image_shape(tuple(image_shape)), width=self.width,
                            scales=self.scales, **dict(self.method_options))

    def stopper(self):
        if self.stop == "wmv":
            return WindowedMovingVariance(window=self.stop_window, patience=self.stop_patience)
        if self.stop == "emv":
            return ExponentialMovingVariance(patience=self.stop_patience)
        return None

    def simulate(self, images):
        """One simulated problem per image of :meth:`load_images`, each degraded by the key of (seed, image name):
        an image given twice gets the same degradation in both folders, as it would alone."""
        names = [image_label(spec) for spec in self.images]
        return [self.task.simulate(degradation_key(self.seed, name), x) for x, name in zip(images, names)]

    def load_problems(self):
        """``(problems, labels, tasks)``: the task's measured data when it reads a file (``mri --kspace``, one problem
        per part of :meth:`~dipjax.tasks.TaskConfig.measured_parts`, each mask drawn from the key of (seed,
        "measured")), otherwise simulated from the loaded images; ``tasks[i]`` is the task whose
        :meth:`~dipjax.tasks.TaskConfig.task_metrics` scores problem ``i`` (its own part for measured data)."""
        if self.task.reads_file():
            tasks = self.task.measured_parts()
            loaded = [part.load_measured(degradation_key(self.seed, "measured")) for part in tasks]
            return [problem for problem, _ in loaded], [label for _, label in loaded], tasks
        images, labels = self.load_images()
        return self.simulate(images), labels, [self.task] * len(images)

    def execute(self, method, problems, *, progress: bool = False, **engine_options):
        """Run ``method`` on the problems (one batch) with this configuration; ``engine_options`` are the run's
        handling (``interruptible``, ``checkpoint``, ``checkpoint_every``, ``resume``: :func:`~dipjax.engine.reconstruct`),
        which do not change its numbers."""
        problem = problems[0] if len(problems) == 1 else stack_problems(problems)
        return reconstruct(method, problem, jax.random.key(self.seed), self.steps, stopper=self.stopper(),
                           batch=self.batch, loop=self.loop, independent_keys=self.independent_keys,
                           progress=progress, stop_early=self.stop_early, track_ssim=self.track_ssim,
                           **engine_options)

    def resolved(self, method) -> dict[str, Any]:
        """The whole configuration as JSON-ready values: task options, the method's hyper-parameters (after preset
        and user options) and the presets they came from, steps, seed, stopping rule and strategy."""
        _, sources = resolve_preset(self.method, self.task)
        stop = None
        if self.stop is not None:
            stop = {"rule": self.stop, "patience": self.stop_patience, "early": self.stop_early}
            if self.stop == "wmv":
                stop["window"] = self.stop_window
        return {"task": self.task.options(), "method": self.method, "label": get_method(self.method).label,
                "hyperparameters": describe(method),
                "user_settings": {k: describe(v) for k, v in self.method_options},
                "preset_sources": sources, "steps": self.steps, "seed": self.seed, "images": list(self.images),
                "size": self.size, "channels": self.channels, "width": self.width, "scales": self.scales,
                "stop": stop, "strategy": {"batch": self.batch, "loop": self.loop,
                                           "independent_keys": self.independent_keys,
                                           "backend": jax.default_backend()},
                "track_ssim": self.track_ssim}

