import jax
import pytest


@pytest.fixture
def x64():
    """Run a test in float64 (adjointness and dense-matrix checks need it), restoring the setting afterwards."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)
