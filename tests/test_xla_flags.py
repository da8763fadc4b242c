"""dipjax's XLA options: added once, before JAX starts, never over the user's own."""

import os

import jaxlib
import pytest

from dipjax import xla_flags

OPTION = "--xla_cpu_experimental_ynn_fusion_type"


@pytest.fixture
def fresh(monkeypatch):
    """A process in which no backend has started yet, on a measured jaxlib."""
    monkeypatch.setattr(xla_flags, "_backend_started", lambda: False)
    monkeypatch.setattr(jaxlib, "__version__", "0.10.2")
    monkeypatch.delenv(xla_flags.ENV, raising=False)
    return monkeypatch


def test_the_options_are_added_before_jax_starts(fresh):
    fresh.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    assert xla_flags.apply_default_flags()
    assert os.environ["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=4", f"{OPTION}=reduce"]
    assert xla_flags.apply_default_flags() and os.environ["XLA_FLAGS"].count(OPTION) == 1  # idempotent


def test_the_users_own_setting_wins(fresh):
    fresh.setenv("XLA_FLAGS", f"{OPTION}=individual_dot")
    assert xla_flags.apply_default_flags() and os.environ["XLA_FLAGS"] == f"{OPTION}=individual_dot"


@pytest.mark.parametrize("case", ["off", "started", "unmeasured jaxlib"])
def test_nothing_changes_when_off_too_late_or_unmeasured(fresh, case):
    fresh.setenv("XLA_FLAGS", "")
    if case == "off":
        fresh.setenv(xla_flags.ENV, "off")
    elif case == "started":
        fresh.setattr(xla_flags, "_backend_started", lambda: True)
    else:
        fresh.setattr(jaxlib, "__version__", "0.99.0")
    assert not xla_flags.apply_default_flags() and os.environ["XLA_FLAGS"] == ""

