"""Validation shared by task and method configurations: one exception type whose message names the option, so the
CLI can show it as ``--<option> <message>`` on one line and Python users see ``<option> <message>``."""

from __future__ import annotations

import math


class OptionError(ValueError):
    """An option (a task option or a method hyper-parameter) with a value it cannot take."""

    def __init__(self, option: str, message: str):
        self.option, self.message = option, message
        super().__init__(f"{option} {message}")


def require(condition: bool, option: str, message: str) -> None:
    """Raise :class:`OptionError` unless ``condition``."""
    if not condition:
        raise OptionError(option, message)


def require_finite(config, *names: str) -> None:
    """Raise :class:`OptionError` for a NaN or infinite number among the attributes ``names`` of ``config``."""
    for n in names:
        v = getattr(config, n)
        require(math.isfinite(v), n, f"must be a finite number, got {v}")
