"""JAX's persistent compilation cache for dipjax's programs, so that compiling a step is paid once per machine.

XLA compiles a DIP step in 7–35 s on a 2-core CPU; with the cache on, a second run of the same configuration (same
shapes, method, monitors, jax version and flags) loads the compiled program from disk instead. The ``dipjax`` command
turns it on for every run (:func:`enable_compilation_cache`); a script or notebook turns it on by calling the same
function (nothing is switched on at import). A cached program is the program XLA compiled, so results are unchanged.

Where (environment variable ``DIPJAX_COMPILATION_CACHE``):

* unset: ``$XDG_CACHE_HOME/dipjax/jax`` (``~/.cache/dipjax/jax`` when ``XDG_CACHE_HOME`` is unset);
* a path: that folder;
* ``0``, ``off`` or ``false``: no persistent cache.

Every program is cached, however quick its compilation (JAX's default skips those under 1 s, which would leave the
small test-size steps out).
"""

from __future__ import annotations

import os

import jax

ENV = "DIPJAX_COMPILATION_CACHE"
OFF = ("0", "off", "false", "no")


def cache_dir() -> str | None:
    """The cache folder the environment asks for, or ``None`` when the cache is turned off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in OFF or not value.strip() else os.path.expanduser(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dipjax", "jax")


def enable_compilation_cache(path: str | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache in ``path`` (default :func:`cache_dir`); returns the folder used,
    or ``None`` when the environment turns the cache off or the folder cannot be created (then nothing changes)."""
    path = path or cache_dir()
    if path is None:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    if not os.access(path, os.W_OK | os.X_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
