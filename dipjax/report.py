"""What a run writes for each image, shared by the CLI and the experiment scripts: ``estimate.png``, ``degraded.png``,
``stopped.png`` (with an early-stopping rule), ``curve.png``, ``history.json`` (the per-iteration numbers behind the
curve) and ``metrics.json`` (the numbers, with the run's resolved configuration), and the estimates themselves at
full precision, ``estimate.npy`` and ``stopped.npy`` (:func:`save_estimate`; the PNGs are 8-bit pictures of the
clipped magnitude). JSON is strict: a value that is not finite is written as ``null``.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dipjax.data import save_png, value_range
from dipjax.files import atomic_path
from dipjax.metrics import psnr, ssim
from dipjax.monitors import quality_image, truth_image
from dipjax.plotting import plot_curve


def strict_json(value):
    """``value`` with numpy types made Python and non-finite floats made ``None`` (valid JSON everywhere)."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return strict_json(value.tolist())
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: str, value) -> None:
    """``value`` as strict JSON (:func:`strict_json`), written atomically (:func:`~dipjax.files.atomic_path`)."""
    text = json.dumps(strict_json(value), indent=1, allow_nan=False)
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def image_metrics(x, problem) -> dict[str, float]:
    """PSNR and SSIM of ``x`` against the truth, on the same clipped view the engine's monitors use."""
    q, ref = quality_image(x, problem), truth_image(problem)
    return {"psnr": float(psnr(q, ref)), "ssim": float(ssim(q, ref))}


def save_estimate(path: str, x, problem) -> None:
    """An estimate as numpy's ``.npy``, atomically, in the units of the run's images: float32 ``(H, W, C)``, or for
    a task with complex images (MRI) complex64 ``(H, W)``, phase included. (An MRI file's image is on the data's
    scale, divided by the peak of the zero-filled image: :meth:`~dipjax.tasks.mri.MRIConfig.load_measured`.)"""
    from dipjax.operators import to_complex

    x = jnp.asarray(x, jnp.float32)
    a = np.asarray(to_complex(x), np.complex64) if problem.operator.complex_image else np.asarray(x)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, a, allow_pickle=False)


def image_result(result, i: int | None):
    """Image ``i`` of a batched result (``None``: the result is one image's): ``(x_final, history, summary)``."""
    pick = (lambda a: a) if i is None else (lambda a: np.asarray(a)[i])
    return pick(result.x_final), {k: pick(v) for k, v in result.history.items()}, \
        {k: pick(v) for k, v in result.summary.items()}


def write_image_report(folder: str, problem, result, i: int | None, *, label: str, config: dict[str, Any],
                       title: str, evaluate=None, image: str | None = None) -> dict[str, Any]:
    """Write one image's files into ``folder`` and return its metrics (also written as ``metrics.json``);
    ``evaluate(x)`` adds the task's own metrics of the final estimate (:meth:`~dipjax.tasks.TaskConfig.task_metrics`).
    ``image``: the image's spec; a DICOM image's ``value_range`` (:func:`~dipjax.data.value_range`: HU for CT)
    is recorded, so that ``estimate.npy`` can be mapped back to its units.
    A run that diverged (``iter_diverged`` in the summary) reports its last finite estimate: ``diverged_at`` is the
    first non-finite iteration and ``estimate_iteration`` the iteration ``estimate.png`` shows. ``complete`` is false
    for a run a signal ended early (:attr:`~dipjax.engine.Result.interrupted`)."""
    os.makedirs(folder, exist_ok=True)
    x_final, history, summary = image_result(result, i)
    diverged_at = int(summary.get("iter_diverged", 0)) or None
    if diverged_at:  # the network output turned non-finite: report the last finite estimate
        x_final = summary["x_last_finite"]
    degraded = np.asarray(problem.operator.display(problem.y))
    save_png(os.path.join(folder, "estimate.png"), quality_image(x_final, problem))
    save_estimate(os.path.join(folder, "estimate.npy"), x_final, problem)
    save_png(os.path.join(folder, "degraded.png"), degraded)
    final = image_metrics(x_final, problem)
    metrics: dict[str, Any] = {
        "image": label, "task": config["task"]["task"], "method": config["method"], "seed": config["seed"],
        "steps": result.steps, "batch_size": 1 if i is None else len(np.asarray(result.x_final)),
        "channels": int(np.asarray(x_final).shape[-1]),
        "psnr_input": float(psnr(degraded, truth_image(problem))),
        "psnr_final": final["psnr"], "ssim_final": final["ssim"],
        "psnr_peak_oracle": float(summary["psnr_peak_oracle"]), "iter_peak_oracle": int(summary["iter_peak_oracle"]),
        "seconds": result.run_seconds, "compile_seconds": result.compile_seconds,
        "init_seconds": result.init_seconds, "seconds_per_step": result.seconds_per_step,
        "memory_estimate_bytes": result.memory_bytes,
        "strategy": list(result.strategy), "backend": jax.default_backend(),
        "diverged_at": diverged_at, "estimate_iteration": diverged_at - 1 if diverged_at else result.steps,
        "complete": not result.interrupted,
    }
    if "x_stop" in summary:
        save_png(os.path.join(folder, "stopped.png"), quality_image(summary["x_stop"], problem))
        save_estimate(os.path.join(folder, "stopped.npy"), summary["x_stop"], problem)
        stopped = image_metrics(summary["x_stop"], problem)
        metrics.update({"iter_stop": int(summary["iter_stop"]), "psnr_stop": stopped["psnr"],
                        "ssim_stop": stopped["ssim"],
                        "detection_gap": metrics["psnr_peak_oracle"] - stopped["psnr"]})
    for k, v in result.extras.items():
        if isinstance(v, (int, float, str)):
            metrics[k] = v
    if evaluate is not None:
        metrics.update({f"{k}_final": v for k, v in evaluate(x_final).items()})
    scale = value_range(image) if image is not None else None
    if scale is not None:
        metrics["value_range"] = scale
    metrics["config"] = config
    write_json(os.path.join(folder, "metrics.json"), metrics)
    write_json(os.path.join(folder, "history.json"), {k: np.asarray(v, np.float64).round(6) for k, v in
                                                       history.items()})
    plot_curve(os.path.join(folder, "curve.png"), history, title=title, psnr_input=metrics["psnr_input"],
               iter_stop=metrics.get("iter_stop"))
    return metrics
