"""The XLA options dipjax runs with, chosen by measurement — the one place they are set.

On CPU, this jaxlib hands matrix products (and the convolutions XLA lowers to them) and reductions to YNNPACK by
default. For the DIP step the products are the slow path there: with them on XLA's own kernels, one skip-net step
(5 × 128, Adam, RGB) on 2 CPU cores took 1.05 s instead of 1.99 s at 256² and 4.64 s instead of 11.0 s at 512². The
reductions are the other way round: XLA's own path rewrites each large sum (every batch normalisation's statistics)
into a tree of ``reduce-window`` operations, 0.21 s of a 1.1 s step at 256²
(``experiments/results/profile_step_no_ynnpack/``), so dipjax keeps YNNPACK for reductions only,
``xla_cpu_experimental_ynn_fusion_type=reduce`` (``python experiments/bench_xla_flags.py [--size 512]``;
``experiments/results/bench_xla_flags_{256,512}/``). The network's forward pass still agrees with PyTorch's
to 1e-4 (the benchmark checks it); results differ from other option sets by floating-point rounding.

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
CPU_OPTIONS = {"--xla_cpu_experimental_ynn_fusion_type": "reduce"}
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
