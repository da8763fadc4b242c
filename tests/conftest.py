import os
import subprocess
import sys

# Unit tests are dominated by XLA compilation (a 4-level skip net of width 8 compiles in ~9 s and runs 50 steps in
# 0.2 s on the 2-core CI machine). These two options of XLA's CPU backend cut compile time by about 2.5x (measured:
# init + step compile 17.3 s -> 5.7 s) for slower code, which the tests' few steps do not feel. They change no
# numerical semantics the tests rely on; a run outside pytest uses XLA's defaults. XLA aborts on a flag it does not
# know (jaxlib 0.11 dropped the second), so each is probed in a subprocess first. Set before JAX starts its backend.
_FAST_COMPILE = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")


def _xla_accepts(flag: str) -> bool:
    env = {**os.environ, "XLA_FLAGS": flag, "JAX_PLATFORMS": "cpu"}
    probe = "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"
    return subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=300).returncode == 0


_flags = os.environ.get("XLA_FLAGS", "")
os.environ["DIPJAX_XLA_FLAGS_OUTSIDE_TESTS"] = _flags  # for tests that run a program as users do (notebooks)
os.environ["XLA_FLAGS"] = " ".join([_flags] + [f for f in _FAST_COMPILE
                                              if f.split("=")[0] not in _flags and _xla_accepts(f)]).strip()

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def x64():
    """Run a test in float64 (adjointness and dense-matrix checks need it), restoring the setting afterwards."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture(autouse=True, scope="module")
def x64_setting_is_restored():
    """Every test module must leave ``jax_enable_x64`` as it found it (a module that switched float64 on at import
    or forgot to switch it back would run every later module in float64)."""
    before = jax.config.jax_enable_x64
    yield
    assert jax.config.jax_enable_x64 == before, "this test module changed jax_enable_x64 and did not restore it"
