"""The XLA options dipjax runs with, chosen by measurement — the one place they are set.

On CPU, this jaxlib sends matrix products (and the convolutions XLA lowers to them) to YNNPACK by default
(``xla_cpu_experimental_ynn_fusion_type=individual_dot``). For the DIP step that is the slow path: with YNNPACK's
fusions off, XLA's own kernels run one skip-net step (5 × 128, Adam, RGB) on 2 CPU cores in 1.05 s instead of
1.99 s at 256² and in 4.64 s instead of 11.0 s at 512², within 10 % of PyTorch channels_last on the same machine
(``python experiments/bench_xla_flags.py [--size 512]``; ``experiments/results/bench_xla_flags_{256,512}/``). The
network's forward pass still agrees with PyTorch's to 1e-4 (the benchmark checks it); results differ from the
YNNPACK path by floating-point rounding.

:func:`apply_default_flags` adds the options to ``XLA_FLAGS``. XLA reads them once, when JAX first starts a
backend, so it must run before any computation: the ``dipjax`` command calls it first thing, and a script or
notebook calls it before its first JAX operation (nothing happens at import). It never overrides an option the user
set in ``XLA_FLAGS``, does nothing when ``DIPJAX_XLA_DEFAULTS=off``, and only touches the jaxlib versions it was
measured on (the option names are XLA-internal and change between releases; an unknown name aborts XLA).
"""

from __future__ import annotations

import os

ENV = "DIPJAX_XLA_DEFAULTS"
#: option -> value, each measured by experiments/bench_xla_flags.py
CPU_OPTIONS = {"--xla_cpu_experimental_ynn_fusion_type": ""}
#: jaxlib releases whose XLA knows these options and on which they were measured
MEASURED_JAXLIB = ("0.10.", "0.11.")


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge.backends_are_initialized())
    except (ImportError, AttributeError):  # a JAX without this internal: assume it has started (change nothing)
        return True


def apply_default_flags() -> bool:
    """Add dipjax's XLA options to ``XLA_FLAGS`` (see the module docstring). Returns True when they will be in
    force (added now or already there), False when turned off, not applicable, or too late (a backend started)."""
    import jaxlib

    if os.environ.get(ENV, "").strip().lower() in ("0", "off", "false", "no"):
        return False
    if not jaxlib.__version__.startswith(MEASURED_JAXLIB):
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    missing = [f"{k}={v}" for k, v in CPU_OPTIONS.items() if k not in flags]
    if not missing:
        return True
    if _backend_started():
        return False
    os.environ["XLA_FLAGS"] = " ".join([flags.strip()] + missing).strip()
    return True
