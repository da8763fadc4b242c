"""Early-stopping rules as pure ``(init, update)`` pairs that the engine runs beside any method.

A stopper is a frozen dataclass with

* ``init(x0) -> state``: ``x0`` is the method's estimate before the first step;
* ``update(state, x, t) -> state``: called after step ``t`` (0-based) with the estimate ``x``.

``state`` is a pytree with at least the fields ``stopped`` (bool scalar: the rule has fired), ``t_stop`` (int32: the
0-based step index of the iterate the rule returns) and ``x_stop`` (that iterate). The engine keeps running a batch
until every image's stopper has fired (then it may exit early) and returns ``x_stop`` beside the final iterate.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax


class Stopper(Protocol):
    name: str

    def init(self, x0: jax.Array) -> Any: ...

    def update(self, state: Any, x: jax.Array, t: jax.Array) -> Any: ...
