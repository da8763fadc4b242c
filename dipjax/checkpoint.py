"""Checkpoints of a running reconstruction: everything the engine carries from step to step, so that a resumed run
ends with the same numbers, bit for bit, as the run that was never stopped (on the same platform and versions).

What is saved (one ``.npz`` file, written atomically by :func:`dipjax.files.atomic_path`):

* every leaf of the engine's carries (:class:`~dipjax.engine.Carry`: the method state — network parameters,
  optimiser state, input, outputs —, the monitors' state — oracle peak, early-stopping windows, divergence guard —,
  and the device history ring buffers), in tree order, as ``carry/00000``, ``carry/00001``, …; JAX's typed PRNG keys
  as their raw key data;
* the host history up to the step reached, as ``history/<metric>``;
* ``meta``: JSON with the format version, the step reached, the run's length and the carries' tree structure, shapes
  and dtypes.

Why this and not Orbax: a carry is a flat list of arrays whose structure the engine rebuilds itself (it runs the
method's ``init`` before loading, and the structure must match exactly), the file must be one atomic write, and
NumPy reads it without JAX (``np.load``). Orbax's asynchronous, sharded, multi-host machinery, and its TensorStore
dependency, buy nothing for a state of a few tens of megabytes. What stays outside: the step's PRNG keys are not
state (step ``t`` uses ``fold_in(run_key, t)`` from the run's seed), nor is the compiled program (it is compiled
again, or loaded from the compilation cache).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np

from dipjax.files import atomic_path

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not belong to this run."""


def _is_key(leaf) -> bool:
    return jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _signature(carries) -> dict:
    leaves, treedef = jax.tree_util.tree_flatten(carries)
    return {"structure": str(treedef), "shapes": [list(np.shape(x)) for x in leaves],
            "dtypes": [str(x.dtype) for x in leaves]}


def save_checkpoint(path: str, carries, history: dict[str, np.ndarray], t: int, steps: int) -> None:
    """Write the carries after ``t`` steps of a ``steps``-step run and the host history up to ``t``."""
    leaves = jax.device_get([jax.random.key_data(x) if _is_key(x) else x
                             for x in jax.tree_util.tree_leaves(carries)])
    arrays = {f"carry/{i:05d}": np.asarray(x) for i, x in enumerate(leaves)}
    arrays.update({f"history/{k}": np.asarray(v[..., :t]) for k, v in history.items()})
    meta = {"format": FORMAT, "t": int(t), "steps": int(steps), **_signature(carries)}
    arrays["meta"] = np.asarray(json.dumps(meta))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load_checkpoint(path: str, carries, history: dict[str, np.ndarray], steps: int):
    """Read a checkpoint into the structure of ``carries`` (freshly initialised for the same run) and the host
    ``history`` (filled in place). Returns ``(t, carries)``; raises :class:`CheckpointError` when the file is not a
    checkpoint of a run with this structure and length."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            arrays = {k: data[k] for k in data.files if k != "meta"}
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')}, this dipjax reads {FORMAT}")
    if meta["steps"] != steps:
        raise CheckpointError(f"checkpoint {path} belongs to a run of {meta['steps']} steps, not {steps}")
    mine = _signature(carries)
    if any(meta[k] != mine[k] for k in mine):
        raise CheckpointError(f"checkpoint {path} was written by a run of another method, network, task or batch "
                              "(its state has a different structure)")
    leaves, treedef = jax.tree_util.tree_flatten(carries)
    restored = []
    for i, template in enumerate(leaves):
        a = arrays[f"carry/{i:05d}"]
        restored.append(jax.random.wrap_key_data(a, impl=jax.random.key_impl(template)) if _is_key(template)
                        else jnp.asarray(a))
    t = int(meta["t"])
    for k, v in history.items():
        if f"history/{k}" not in arrays:
            raise CheckpointError(f"checkpoint {path} has no history of {k!r}")
        v[..., :t] = arrays[f"history/{k}"]
    return t, jax.tree_util.tree_unflatten(treedef, restored)
