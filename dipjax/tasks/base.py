"""What a task is: a frozen configuration dataclass that validates itself, builds its forward model and simulates
its measurements; and the registry that the CLI, the method presets, the tests and the README read.

A task is one module in :mod:`dipjax.tasks` (found automatically) or anywhere else that defines

.. code-block:: python

    @register_task
    @dataclasses.dataclass(frozen=True)
    class MyTaskConfig(TaskConfig):
        name: ClassVar[str] = "mytask"                    # the CLI's --task value
        summary: ClassVar[str] = "y = ... (one line)"      # the README's task table
        strength: float = option(0.5, "how strong the degradation is")   # a CLI option: --strength

        def check(self):                                  # range checks, one-line messages
            require(0 < self.strength <= 1, "strength", f"must be in (0, 1], got {self.strength}")

        def build_operator(self, key, shape):             # the forward model for images of `shape`
            return MyOperator(in_shape=shape, strength=self.strength)

and nothing else: its options appear in ``dipjax reconstruct``, its operator in the registry-wide operator tests,
and method presets may name it. Every option is a dataclass field declared with :func:`option` (default, one line of
help, optional choices). The base class holds the measurement noise shared by every task (``sigma`` on the 0–255
scale, ``noise_channels``), checks types, choices and finiteness of every option, and simulates ``y = noise(A x)``.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from typing import Any, ClassVar

import jax

from dipjax.operators import GaussianNoise
from dipjax.problem import Problem, make_problem
from dipjax.validation import OptionError, require

NOISE_CHANNELS = ("independent", "shared")


def option(default, help: str, *, choices: tuple | None = None):
    """A task option: a dataclass field with its default, a line of help and (for strings) its allowed values."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """Base of every task configuration: the measurement noise, validation, and the simulation of measurements."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: Channels the task's images are loaded with (``None``: the image's own; 1: grayscale, e.g. MRI and CT).
    input_channels: ClassVar[int | None] = None
    #: Channels of the images its operator acts on (``None``: as loaded; 2 for complex images).
    operator_channels: ClassVar[int | None] = None
    #: Complex images (two real channels, unbounded): the method registry builds networks without an output sigmoid.
    complex_images: ClassVar[bool] = False
    #: The option naming a measured-data file the task can reconstruct instead of simulating (``mri``: ``kspace``),
    #: and the suffixes of such files (``dipjax dataset`` takes folders of them); None and () when it only simulates.
    file_option: ClassVar[str | None] = None
    file_suffixes: ClassVar[tuple[str, ...]] = ()

    sigma: float = option(25.0, "Gaussian noise std on the 0-255 scale")
    noise_channels: str = option("independent", "draw the noise per channel, or once per pixel for all channels "
                                 "(the Deep Decoder notebook's σ = 25 protocol)", choices=NOISE_CHANNELS)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value, choices = getattr(self, f.name), f.metadata.get("choices")
            kind = type(f.default)
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, float(value))
                value = float(value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise OptionError(f.name, f"must be a {kind.__name__}, got {value!r}")
            if kind is float:
                require(math.isfinite(value), f.name, f"must be a finite number, got {value}")
            if choices is not None:
                require(value in choices, f.name, f"must be one of {', '.join(map(str, choices))}, got {value!r}")
        require(self.sigma >= 0, "sigma", f"must be non-negative, got {self.sigma}")
        self.check()

    def check(self) -> None:
        """Range checks of the task's own options (raise :class:`OptionError` via :func:`require`)."""

    def image_shape(self, loaded_shape) -> tuple[int, int, int]:
        """The shape of the images the operator and the networks see, for a loaded image of ``loaded_shape``."""
        h, w, c = loaded_shape
        return (h, w, self.operator_channels or c)

    def build_operator(self, key, shape: tuple[int, int, int]):  # pragma: no cover - abstract
        """The forward model for images of ``shape``; ``key`` draws random masks, kernels or matrices."""
        raise NotImplementedError

    def noise_clip(self) -> tuple[float, float] | None:
        """Range the noisy measurements are clipped to (``None``: not clipped)."""
        return None

    def noise_model(self):
        """``noise(key, y)``: Gaussian, σ/255, per channel or shared, clipped as :meth:`noise_clip` says."""
        if self.sigma == 0:
            return None
        return GaussianNoise(self.sigma / 255.0, self.noise_clip(), self.noise_channels == "shared")

    def simulate(self, key, x_true) -> Problem:
        """Build the operator (from the first half of ``key``) and simulate ``y = noise(A x)`` (second half)."""
        k_op, k_noise = jax.random.split(key)
        op = self.build_operator(k_op, tuple(x_true.shape))
        return make_problem(k_noise, op, x_true, self.noise_model())

    def reads_file(self) -> bool:
        """Whether the task reconstructs measured data from a file (``mri --kspace``) instead of simulating from
        images; such a task implements :meth:`load_measured`."""
        return False

    def with_file(self, path: str) -> "TaskConfig":
        """This task reconstructing the measured-data file ``path`` (its :attr:`file_option` set to it)."""
        if self.file_option is None:
            raise ValueError(f"task {self.name} reads no measured-data files")
        return dataclasses.replace(self, **{self.file_option: path})

    def measured_parts(self) -> list["TaskConfig"]:
        """The items of measured data this task reads, each as a task that reads one (``mri --slices``: one per
        slice of the file), reconstructed together as one batch; ``[self]`` by default. A task that reads a file
        reads it here, so that a file it cannot use (``FastMRIError``) is refused before any compute."""
        return [self]

    def part_name(self) -> str:
        """What tells this part of a measured-data file from the file's other :meth:`measured_parts`, for output
        names (``mri``: ``slice7``)."""
        return "part"

    def load_measured(self, key) -> tuple[Problem, str]:  # pragma: no cover - abstract
        """``(problem, label)`` of the measured data the task reads (``key`` draws a retrospective mask)."""
        raise NotImplementedError(f"task {self.name} does not read measured data")

    def task_metrics(self, problem, x) -> dict[str, float]:
        """Metrics of the final estimate ``x`` that the task defines beside PSNR/SSIM (``metrics.json`` gets them as
        ``<name>_final``): fastMRI's scores against the file's reference (``mri --kspace``), the PSNR up to the trivial
        ambiguities (``pr``); empty by default."""
        return {}

    def options(self) -> dict[str, Any]:
        """``{"task": name, option: value, ...}``: the whole configuration, for ``metrics.json`` and ``--dry-run``."""
        return {"task": self.name, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}}


#: Registered tasks by name, in registration order.
TASKS: dict[str, type[TaskConfig]] = {}


def register_task(cls: type[TaskConfig]) -> type[TaskConfig]:
    """Class decorator: add a task configuration class to :data:`TASKS` under ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, TaskConfig) and dataclasses.is_dataclass(cls)):
        raise TypeError("register_task takes a frozen dataclass subclass of TaskConfig")
    if not cls.name or not cls.summary:
        raise TypeError(f"task class {cls.__name__} needs a name and a one-line summary")
    if cls.name in TASKS and TASKS[cls.name].__qualname__ != cls.__qualname__:
        raise ValueError(f"task name {cls.name!r} is taken by {TASKS[cls.name].__name__}")
    TASKS[cls.name] = cls
    return cls


def get_task(name: str) -> type[TaskConfig]:
    """The registered task ``name``; an unknown name is an error, never a fallback."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name]


def task_options(cls: type[TaskConfig]) -> list[dataclasses.Field]:
    """The options a task adds to the shared noise options (its own CLI flags)."""
    shared = {f.name for f in dataclasses.fields(TaskConfig)}
    return [f for f in dataclasses.fields(cls) if f.name not in shared]


def task_config(name: str, **options) -> TaskConfig:
    """``task_config("sr", factor=8, sigma=0)``: the validated configuration of a registered task. An option the
    task does not have is an error."""
    cls = get_task(name)
    known = {f.name for f in dataclasses.fields(cls)}
    for k in options:
        require(k in known, k, f"does not apply to task {name!r} (its options: {', '.join(sorted(known))})")
    return cls(**options)


def degradation_key(seed: int, name: str):
    """The key that draws an image's operator and noise: a function of the seed *and* the image name, so an image
    is degraded identically whether it runs alone or in a batch, and different images get different noise."""
    return jax.random.fold_in(jax.random.key(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)


def markdown_table() -> str:
    """The README's task table, generated from the registry (``dipjax tasks`` prints it)."""
    rows = ["| task | forward model | options = default |", "|---|---|---|"]
    for name, cls in TASKS.items():
        opts = ", ".join(_option_text(f) for f in task_options(cls))
        rows.append(f"| `{name}` | {cls.summary} | {opts or '—'} |")
    return "\n".join(rows)


def _option_text(f: dataclasses.Field) -> str:
    default = f"{f.default:.4g}" if isinstance(f.default, float) else f.default if f.default != "" else "(none)"
    text = f"`--{f.name.replace('_', '-')}` = {default}"
    others = [str(c) for c in f.metadata.get("choices") or () if c != f.default]
    return text + (f" (or {', '.join(others)})" if others else "")
