"""The method registry: every method by name with its authors' defaults per task, in one table per method.

Each method module registers a :class:`MethodSpec` beside its class: the survey's name for it, a factory for its
network, the hyper-parameters a user may set (:class:`Option`: the CLI's flags come from here, not from guessing
field names) and its table of published defaults (:class:`Preset` rows, read from METHODS.md with the upstream file
each number comes from). :func:`build_method` receives the whole task configuration and resolves the table:

* rows apply in order, a row whose ``task`` matches (``None``: every task) and whose ``when(config)`` holds
  overriding what earlier rows set, so a table reads "general, then per task, then per task setting" — e.g. DIP's
  input perturbation is 0.03 for ×4 super-resolution and 0.05 from ×8 on (``when=lambda c: c.factor >= 8``);
* a row's ``steps`` is the published iteration budget (network updates), its ``network`` the keyword arguments of
  the method's network factory, everything else a field of the method's dataclass;
* the user's ``width``/``scales`` resize the network and ``overrides`` set fields last;
* for tasks with complex images (``TaskConfig.complex_images``: two unbounded real channels) every network is built
  without its output sigmoid, unless a row says otherwise.

.. code-block:: python

    from dipjax.methods import build_method, default_steps
    from dipjax.tasks import task_config
    config = task_config("sr", factor=8)
    method = build_method("dip", config, (64, 64, 3), width=32)    # input_noise_std 0.05
    steps = default_steps("dip", config)                            # 4000
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

from flax import linen as nn

from dipjax.tasks import TaskConfig
from dipjax.validation import OptionError


@dataclasses.dataclass(frozen=True)
class Preset:
    """One row of a method's table of published defaults (see the module docstring)."""

    task: str | None
    source: str
    settings: Mapping[str, Any]
    when: Callable[[TaskConfig], bool] | None = None

    def applies(self, config: TaskConfig) -> bool:
        return (self.task is None or self.task == config.name) and (self.when is None or bool(self.when(config)))


def preset(task: str | None, source: str, *, when: Callable[[TaskConfig], bool] | None = None, **settings) -> Preset:
    """A :class:`Preset` row: ``preset("sr", "super-resolution.ipynb cell 7", steps=2000, input_noise_std=0.03)``."""
    return Preset(task, source, dict(settings), when)


@dataclasses.dataclass(frozen=True)
class Option:
    """A hyper-parameter users may set: CLI flag ``--<flag>`` sets the method field ``field``. ``convert`` turns the
    command-line string into the value (default: the field's type)."""

    flag: str
    field: str
    help: str
    convert: Callable[[str], Any] | None = None


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name (CLI ``--method``), the survey's label, its class, its network factory
    ``network(image_shape, *, width=None, scales=None, **preset_kwargs)``, its preset table and its options."""

    name: str
    label: str
    method: type
    network: Callable[..., nn.Module]
    presets: tuple[Preset, ...]
    options: tuple[Option, ...] = ()

    def option(self, flag: str) -> Option | None:
        return next((o for o in self.options if o.flag == flag), None)


#: Registered methods by name, in registration order.
METHODS: dict[str, MethodSpec] = {}


def register_method(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` to :data:`METHODS` (called by each method module)."""
    if spec.name in METHODS and METHODS[spec.name].method.__qualname__ != spec.method.__qualname__:
        raise ValueError(f"method name {spec.name!r} is taken by {METHODS[spec.name].method.__name__}")
    fields = {f.name for f in dataclasses.fields(spec.method)}
    for o in spec.options:
        if o.field not in fields:
            raise ValueError(f"{spec.name}: option --{o.flag} names {o.field!r}, not a field of {spec.method.__name__}")
    METHODS[spec.name] = spec
    return spec


def get_method(name: str) -> MethodSpec:
    """The registered method ``name``; an unknown name is an error."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
    return METHODS[name]


def resolve_preset(name: str, config: TaskConfig) -> tuple[dict[str, Any], list[str]]:
    """The settings the method ``name`` takes for the task ``config`` and the sources of the rows that applied."""
    settings: dict[str, Any] = {"network": {}}
    sources = []
    for row in get_method(name).presets:
        if row.applies(config):
            for k, v in row.settings.items():
                if k == "network":
                    settings["network"] = {**settings["network"], **v}
                else:
                    settings[k] = v
            sources.append(row.source)
    if "steps" not in settings:
        raise ValueError(f"the preset table of {name!r} gives no step count for task {config.name!r}")
    return settings, sources


def default_steps(name: str, config: TaskConfig) -> int:
    """The published iteration budget (network updates) of method ``name`` for the task ``config``."""
    return int(resolve_preset(name, config)[0]["steps"])


def build_method(name: str, config: TaskConfig, image_shape: tuple[int, int, int], *, width: int | None = None,
                 scales: int | None = None, **overrides):
    """The method ``name`` with its published defaults for ``config`` on images of ``image_shape`` ``(H, W, C)``,
    its network resized by ``width``/``scales`` and any field set by ``overrides``. Raises ``ValueError`` (an
    :class:`~dipjax.tasks.OptionError` for a bad setting) with a one-line message."""
    spec = get_method(name)
    settings, _ = resolve_preset(name, config)
    settings.pop("steps")
    net_kwargs = dict(settings.pop("network"))
    for key, value in (("width", width), ("scales", scales)):
        if value is not None:
            if key not in inspect.signature(spec.network).parameters:
                raise OptionError(key, f"does not apply to {name}: its network has no {key} setting")
            net_kwargs[key] = value
    if config.complex_images and "sigmoid" not in net_kwargs:  # real and imaginary parts are not in [0, 1]
        net_kwargs["sigmoid"] = False
    network = spec.network(tuple(image_shape), **net_kwargs)
    fields = {f.name for f in dataclasses.fields(spec.method)}
    for k in overrides:
        if k not in fields:
            raise OptionError(k, f"is not a setting of {name} ({spec.method.__name__})")
    method = spec.method(network=network, **{**settings, **overrides})
    network.check_size(*image_shape[:2])
    return method


def describe(value) -> Any:
    """A JSON-ready description of a method (or any of its fields): dataclass fields recursively, Flax modules as
    their class and configuration, other objects as their ``repr``."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [describe(v) for v in value]
    if isinstance(value, nn.Module):
        skip = {"parent", "name"}
        return {"type": type(value).__name__,
                **{f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name not in skip}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__,
                **{f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    return repr(value)


def markdown_table(tasks: tuple[str, ...] | None = None) -> str:
    """The README's method table: each method's published step count per task (generated from the registry)."""
    from dipjax.tasks import TASKS

    tasks = tuple(tasks or TASKS)
    rows = ["| `--method` | method | " + " | ".join(f"`{t}`" for t in tasks) + " | options |",
            "|---|---|" + "---|" * len(tasks) + "---|"]
    for name, spec in METHODS.items():
        steps = [f"{default_steps(name, TASKS[t]()):,}" for t in tasks]
        opts = ", ".join(f"`--{o.flag}`" for o in spec.options)
        rows.append(f"| `{name}` | {spec.label} | " + " | ".join(steps) + f" | {opts} |")
    return "\n".join(rows)
