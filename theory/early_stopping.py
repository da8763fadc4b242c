"""ES-DIP under NTK dynamics: the windowed moving variance (survey eq. 16) that the linearised recursion (eq. 6)
predicts, to set beside the one measured on real training of the same network.

Under eq. (6) every mode of ``S = K^{1/2} AᵀA K^{1/2}`` relaxes geometrically, ``(1 − η s_i)^t``: the iterate moves
fast while the large-s (low-frequency) modes fit and slowly while the small-s (noise) modes do, so the WMV dips
between the two phases — the window ES-WMV detects. :func:`predicted_wmv` evaluates the closed-form trajectory at
every iteration and applies :func:`dipjax.stopping.windowed_moving_variance` to it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dipjax.stopping import windowed_moving_variance
from dipjax.theory.filter_recursion import FilterRecursion, iterate


def predicted_wmv(rec: FilterRecursion, y, steps: int, window: int, f0=None, chunk: int = 512):
    """``(wmv, trajectory)``: WMV of ``f_0 … f_steps`` from the closed form of eq. (6), window ``window``.

    ``wmv[j]`` belongs to the window ending at iterate ``j + window − 1`` (as in
    :func:`~dipjax.stopping.windowed_moving_variance`).
    """
    ts = np.arange(steps + 1)
    frames = np.concatenate([np.asarray(iterate(rec, y, jnp.asarray(ts[i:i + chunk]), f0))
                             for i in range(0, len(ts), chunk)])
    return windowed_moving_variance(frames, window), frames


def wmv_detection(wmv, window: int) -> int:
    """The iterate ES-WMV returns when run to the end: the end of the minimum-variance window."""
    return int(np.argmin(np.asarray(wmv))) + window - 1
