import os
import shutil
import tempfile

import jax
import pytest


SESSION_CACHE = "DIPJAX_TEST_SESSION_CACHE"


def pytest_configure(config):
    """The suite runs with XLA's own CPU kernels (``DIPJAX_XLA_DEFAULTS=off``, which the CLI runs the tests start in
    subprocesses inherit, so in-process and CLI runs compute alike). dipjax's option (:mod:`dipjax.xla_flags`) speeds
    up large steps but adds about 9 % of compilation to a suite of tiny programs (the whole suite passed with it:
    929 s against 853 s on the CI machine). (Compiling at ``--xla_backend_optimization_level=0`` would save about a
    third, but XLA:CPU 0.10.2 then computes the jitted CT vector–Jacobian product wrongly and SG-DIP/aSeqDIP steps
    turn non-finite: not used.)

    JAX's persistent compilation cache is on, in a folder of this session's own (made by the first process, passed
    to pytest-xdist's workers and to every CLI subprocess through the environment, removed at the end): the suite
    compiles the same small programs in many tests and processes (a resumed CLI run, one tiny configuration in
    several tests), and a program compiled once is loaded from there afterwards. On the 2-core machine the whole
    suite took 888 s with it and 941 s without, back to back. Nothing goes into the user's cache folder;
    tests/test_compilation_cache.py gives its subprocesses a folder of their own."""
    os.environ.setdefault("DIPJAX_XLA_DEFAULTS", "off")
    if SESSION_CACHE not in os.environ:  # the controlling process (or a run without xdist); workers inherit it
        os.environ[SESSION_CACHE] = tempfile.mkdtemp(prefix="dipjax-test-compilation-cache-")
        config.dipjax_owns_session_cache = True
    os.environ["DIPJAX_COMPILATION_CACHE"] = os.environ[SESSION_CACHE]
    from dipjax.compilation_cache import enable_compilation_cache

    enable_compilation_cache()


def pytest_unconfigure(config):
    if getattr(config, "dipjax_owns_session_cache", False):
        shutil.rmtree(os.environ.pop(SESSION_CACHE), ignore_errors=True)


@pytest.fixture
def x64():
    """Run a test in float64 (adjointness and dense-matrix checks need it), restoring the setting afterwards."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture(autouse=True, scope="module")
def compiled_programs_are_released():
    """Release every compiled program after each test module: the suite compiles thousands of small programs, each
    holding a few memory mappings, and a full run in one process otherwise approaches the kernel's mapping limit
    (an XLA compilation segfaulted late in the run before this was added)."""
    yield
    from dipjax.engine import clear_caches

    clear_caches()


@pytest.fixture(autouse=True, scope="module")
def x64_setting_is_restored():
    """Every test module must leave ``jax_enable_x64`` as it found it (a module that switched float64 on at import
    or forgot to switch it back would run every later module in float64)."""
    before = jax.config.jax_enable_x64
    yield
    assert jax.config.jax_enable_x64 == before, "this test module changed jax_enable_x64 and did not restore it"
