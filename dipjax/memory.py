"""Will a run fit in memory? XLA's own account of a compiled program's buffers, against what the machine has free.

Before a run computes anything, :func:`dipjax.engine.reconstruct` compiles its programs ahead of time; XLA then knows
every buffer a program needs (``Compiled.memory_analysis()``: arguments, outputs, temporaries — the activations kept
for the backward pass — and which outputs reuse donated arguments). :func:`run_bytes` turns that into the run's
peak: the largest program's buffers plus the state of every other image held meanwhile. :func:`check_fits` compares
it with :func:`available_bytes` and raises :class:`RunTooLarge` (a ``MemoryError``; the CLI prints one line and exits
2) before the first step, instead of a failed allocation minutes or hours later.

What the estimate leaves out: the JAX runtime and the Python process (a few hundred MB), the host-side history
(``4 × steps × metrics`` bytes per image) and the images on the host. ``experiments/bench_memory.py`` reports the
estimate beside the measured peak resident memory of a 512² run.

Available memory: on an accelerator, the device's ``bytes_limit − bytes_in_use``; on the CPU, ``MemAvailable`` of
``/proc/meminfo``, lowered to the control group's limit less its usage where one is set (a SLURM job or a container
sees the whole machine in ``/proc/meminfo``). The environment variable ``DIPJAX_MEMORY_LIMIT`` (bytes, or a number
with ``K``/``M``/``G``/``T``, e.g. ``16G``) replaces it; ``off`` turns the check off.
"""

from __future__ import annotations

import os
import re

ENV = "DIPJAX_MEMORY_LIMIT"
_UNITS = {"": 1, "K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}
# (limit, usage) files of a cgroup v2 and a cgroup v1 memory controller, as mounted inside a job or container
_CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                 ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


class RunTooLarge(MemoryError):
    """A run whose estimated peak memory exceeds what is available; raised before it computes anything."""


def human_bytes(n: float) -> str:
    """``n`` bytes in GiB with one decimal, or in MiB below 1 GiB."""
    return f"{n / 2 ** 30:.1f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.1f} MiB"


def program_bytes(compiled) -> int | None:
    """Bytes a compiled program holds while it runs, by XLA's account: arguments + outputs − outputs aliasing donated
    arguments + temporaries + generated code. ``None`` when the backend gives no account."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        return None
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes
               + m.generated_code_size_in_bytes)


def output_bytes(compiled) -> int:
    """Bytes of a compiled program's outputs (for ``init``: one image's carry)."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001
        return 0
    return int(m.output_size_in_bytes) if m is not None else 0


def run_bytes(programs, carry_bytes: int, carries: int) -> int | None:
    """Peak bytes of a run that keeps ``carries`` carries of ``carry_bytes`` each and runs ``programs`` on one of them
    at a time: the largest program plus the ``carries − 1`` others. ``None`` when no program has an account."""
    sizes = [b for b in map(program_bytes, programs) if b is not None]
    return max(sizes) + max(carries - 1, 0) * carry_bytes if sizes else None


def parse_bytes(text: str) -> int:
    """``"16G"`` → 17179869184; bytes, or a number followed by K, M, G or T (powers of 1024; a trailing ``B`` or
    ``iB`` is allowed). ValueError otherwise."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(I?B)?\s*", text.upper())
    if not m:
        raise ValueError(f"{ENV} must be a size such as 16G or 8000000000, or off; got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) and unreadable files: None


def _host_available() -> int | None:
    free = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if free is None and hasattr(os, "sysconf"):
        try:
            free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            free = None
    for limit_file, usage_file in _CGROUP_FILES:
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2 ** 60:  # v1 writes a huge number for "no limit"
            free = min(free, limit - usage) if free is not None else limit - usage
    return free


def available_bytes(device) -> int | None:
    """Bytes free for a run on ``device`` (see the module docstring); ``None`` when unknown or the check is off."""
    setting = os.environ.get(ENV, "").strip()
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    if setting:
        return parse_bytes(setting)
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - backends without memory statistics
        pass
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return _host_available() if device.platform == "cpu" else None


def check_fits(needed: int | None, device, what: str) -> None:
    """Raise :class:`RunTooLarge` when ``needed`` bytes exceed :func:`available_bytes` of ``device``."""
    free = available_bytes(device)
    if needed is None or free is None or needed <= free:
        return
    raise RunTooLarge(f"it needs about {human_bytes(needed)} by XLA's account of {what}, and "
                      f"{human_bytes(max(free, 0))} is free on {device.platform} (set {ENV} to change the limit)")
