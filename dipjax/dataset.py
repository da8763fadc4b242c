"""A whole dataset with one method configuration: inputs, per-image results, resumable by image, spread over every
device (and host), and the table a paper needs.

.. code-block:: python

    specs = list_inputs(["data/kodak/"])                       # a folder, a glob, a list file or image names
    run = RunConfig(task=task_config("denoise", sigma=25), method="dip", images=tuple(specs), size=256)
    summary = run_dataset(run, "out/kodak", config=run.resolved(run.build_method(shape)))

What it does (``dipjax dataset`` is the command-line front):

* **Groups.** The images, in input order, form fixed groups of ``group_size`` (default: one per device); each group
  is one :func:`~dipjax.engine.reconstruct` call with the batch spread over the devices
  (``reconstruct(devices=…)``: the backend's strategy on every device, the same keys as a one-image run with that
  seed, so every image's numbers are those of ``dipjax reconstruct --image IT``; bit for bit under the CPU's
  sequential strategy). Measured-data files (fastMRI ``.h5`` for ``mri``) differ in size and coils: each file is a
  group, its parts (``--slices``) one batch.
* **Atomic per-image outputs.** A group's image folders are written under ``OUT/.partial-LABEL`` and renamed into
  place, so ``OUT/LABEL`` is complete or absent. A rerun of the same command skips every image whose folder exists
  (its files are not touched) and resumes an unfinished group from its checkpoint (``OUT/.checkpoints``, written
  every ``checkpoint_every`` steps and when SIGINT/SIGTERM end the run).
* **Hosts.** With ``jax.distributed`` initialised (``process_count > 1``), process ``k`` takes the groups ``g`` with
  ``g % process_count == k`` on its local devices, writing into the shared output folder; the processes meet at a
  barrier (``multihost_utils.sync_global_devices``) and process 0 writes the summary.
* **Summary.** ``summary.json``, ``summary.csv`` and ``summary.md``: per image and mean ± sample standard deviation
  (``ddof = 1``) of every numeric metric the per-image ``metrics.json`` files share (input, final, oracle peak,
  stopped iterate where a stopper is set, seconds); ``psnr_band.png``, the PSNR curves' mean ± std band; and the
  throughput of this invocation (images per hour, compile seconds, the share of wall time each device had work).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import io
import json
import os
import shutil
import time
from typing import Any, Callable, Sequence

import numpy as np

from dipjax.data import BUNDLED, BUNDLED_DICOM, FILE_SUFFIXES, ImageError, load_image, unique_labels
from dipjax.engine import PipelineInterrupted, image_mesh
from dipjax.files import atomic_path
from dipjax.plotting import plot_psnr_band
from dipjax.report import strict_json, write_image_report, write_json
from dipjax.tasks import degradation_key

LIST_SUFFIXES = (".txt", ".lst")
SUMMARY_FILES = ("summary.json", "summary.csv", "summary.md", "psnr_band.png")
CHECKPOINTS = ".checkpoints"
#: Per-image metrics that describe the run rather than measure it: not averaged.
NOT_AVERAGED = ("seed", "steps", "batch_size", "channels", "estimate_iteration", "init_seconds", "seconds_per_step")


class DatasetInterrupted(Exception):
    """SIGINT/SIGTERM ended a group early; its checkpoint is saved and a rerun of the command continues."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def list_inputs(specs: Sequence[str], suffixes: tuple[str, ...] = FILE_SUFFIXES) -> list[str]:
    """Image specifications from folders (their files with ``suffixes``, by default the image files; sorted, not
    recursive), globs, list files (``.txt``/``.lst``: one path per line, relative to the list file; ``#`` comments)
    and single images (a path or a bundled name), in the order given. Raises :class:`~dipjax.data.ImageError` for a
    spec that yields nothing."""
    found: list[str] = []
    for spec in specs:
        if os.path.isdir(spec):
            files = sorted(os.path.join(spec, f) for f in os.listdir(spec) if f.lower().endswith(suffixes))
            if not files:
                raise ImageError(f"folder {spec!r} holds no image files ({', '.join(suffixes)})")
        elif spec.lower().endswith(LIST_SUFFIXES):
            try:
                with open(spec) as f:
                    lines = [line.strip() for line in f]
            except OSError as exc:
                raise ImageError(f"cannot read list file {spec!r}: {exc.strerror}") from None
            base = os.path.dirname(spec)
            names = [line for line in lines if line and not line.startswith("#")]
            files = [n if n in BUNDLED or n in BUNDLED_DICOM else os.path.normpath(os.path.join(base, n)) for n in names]
            if not files:
                raise ImageError(f"list file {spec!r} names no images")
        elif any(c in spec for c in "*?["):
            files = sorted(f for f in glob.glob(spec) if f.lower().endswith(suffixes))
            if not files:
                raise ImageError(f"pattern {spec!r} matches no image files ({', '.join(suffixes)})")
        else:
            files = [spec]
        found.extend(files)
    return found


def measured_tasks(run, specs: Sequence[str]) -> list | None:
    """One task per input, each reading its file, when every input is a measured-data file of ``run.task`` (fastMRI
    ``.h5`` for ``mri``); None when none is; :class:`~dipjax.data.ImageError` when images and files are mixed."""
    suffixes = run.task.file_suffixes
    measured = [bool(suffixes) and spec.lower().endswith(suffixes) for spec in specs]
    if not any(measured):
        return None
    if not all(measured):
        raise ImageError(f"the dataset mixes {run.task.name} data files ({', '.join(suffixes)}) and images; run them "
                         "separately")
    return [run.task.with_file(spec) for spec in specs]


@dataclasses.dataclass(frozen=True)
class Item:
    """One reconstruction of a dataset: its input (an image, or a measured-data file), the name of its output folder,
    the task that reads it (measured data; ``None`` for an image, which ``run.task`` simulates from) and the position
    of its input in ``run.images`` (the parts of one file share it)."""

    spec: str
    label: str
    task: Any
    source: int


def dataset_items(run) -> list[Item]:
    """The dataset's reconstructions, in input order: one per image, or one per part of each measured-data file
    (``mri --slices``: a slice, its folder ``FILE-sliceK``; a file of one part keeps the file's name). Every file is
    read here, before any compute (:class:`~dipjax.fastmri.FastMRIError` for one that cannot be used)."""
    specs, labels = list(run.images), unique_labels(run.images)
    tasks = measured_tasks(run, specs)
    if tasks is None:
        return [Item(spec, label, None, i) for i, (spec, label) in enumerate(zip(specs, labels))]
    items = []
    for i, (spec, label, task) in enumerate(zip(specs, labels, tasks)):
        parts = task.measured_parts()
        items += [Item(spec, label if len(parts) == 1 else f"{label}-{part.part_name()}", part, i) for part in parts]
    return items


def first_problem_shape(run, items: Sequence[Item]) -> tuple[int, ...]:
    """The image shape of the dataset's first item (the network is built for it)."""
    if items[0].task is not None:
        return tuple(items[0].task.load_measured(degradation_key(run.seed, "measured"))[0].x_true.shape)
    return load_image(items[0].spec, run.size, run.channels or run.task.input_channels).shape


def groups_of(n: int, size: int) -> list[list[int]]:
    return [list(range(start, min(n, start + size))) for start in range(0, n, size)]


def run_dataset(run, out: str, *, config: dict[str, Any], devices=None, group_size: int | None = None,
                checkpoint_every: int = 0, progress: bool = False, log: Callable[[str], None] = print,
                items: Sequence[Item] | None = None) -> dict[str, Any] | None:
    """Reconstruct every item of the dataset (:func:`dataset_items`: the images of ``run.images``, or the parts of
    its measured-data files) into ``out/LABEL`` and, on process 0, write the summary.

    ``run``: a :class:`~dipjax.run.RunConfig`; ``config``: its resolved configuration (recorded in each
    ``metrics.json`` with ``images`` narrowed to that item's input and ``task`` to its part). ``devices``: the
    devices to spread each group over (default: ``jax.local_devices()``); ``group_size``: images per group (default:
    the number of devices; measured data: one group per file, its parts together); ``items``: the
    :func:`dataset_items` of ``run``, when the caller has them. Under ``jax.distributed`` every process calls this with
    the same arguments (and a shared ``out``); each runs its groups, all meet at a barrier, and process 0 writes the
    summary. Returns the summary (process 0) or None.
    """
    import jax
    from jax.experimental.multihost_utils import sync_global_devices

    process_index, process_count = jax.process_index(), jax.process_count()

    devices = list(devices or jax.local_devices())
    group_size = group_size or len(devices)
    items = list(items if items is not None else dataset_items(run))
    specs, labels = [item.spec for item in items], [item.label for item in items]
    if items[0].task is None:
        channels = run.channels or run.task.input_channels
        images = [load_image(spec, run.size, channels) for spec in specs]  # every file is read before any compute
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            gray = [lab for lab, im in zip(labels, images) if im.shape[-1] == 1]
            raise ImageError(f"the dataset mixes grayscale ({', '.join(gray[:5])}{'…' if len(gray) > 5 else ''}) "
                             "and colour images; pass --gray or --rgb")
        method = run.build_method(images[0].shape)
        groups = groups_of(len(items), group_size)
    else:  # measured data: files differ in size and coils, so each is a group of its own (its parts one batch)
        method = None  # built for the first file's problem, once it is loaded
        sources = sorted({item.source for item in items})
        groups = [[i for i, item in enumerate(items) if item.source == s] for s in sources]
    task_of = lambda i: run.task if items[i].task is None else items[i].task  # noqa: E731
    os.makedirs(os.path.join(out, CHECKPOINTS), exist_ok=True)
    record = os.path.join(out, f".throughput-{process_index}.json")
    if os.path.exists(record):
        os.remove(record)  # an earlier run's
    if process_count > 1:
        sync_global_devices("dipjax dataset: start")
    started = time.perf_counter()
    ran, compile_seconds, busy = 0, 0.0, {str(d): 0.0 for d in devices}
    per_device = {str(d): 0 for d in devices}
    for g, group in enumerate(groups):
        if g % process_count != process_index:
            continue
        if all(os.path.isdir(os.path.join(out, labels[i])) for i in group):
            continue  # finished by an earlier run: reused as it is
        if items[0].task is None:
            sub = dataclasses.replace(run, images=tuple(specs[i] for i in group))
            problems = sub.simulate([images[i] for i in group])
        else:
            problems = [items[i].task.load_measured(degradation_key(run.seed, "measured"))[0] for i in group]
            if method is None:
                method = run.build_method(tuple(problems[0].x_true.shape))
        checkpoint = os.path.join(out, CHECKPOINTS, f"group-{g:05d}.npz")
        saved = os.path.isfile(checkpoint) or glob.glob(glob.escape(checkpoint[:-4]) + "-*.npz")  # OES: per stage
        try:
            result = run.execute(method, problems, progress=progress, interruptible=True, checkpoint=checkpoint,
                                 checkpoint_every=checkpoint_every, resume=bool(saved), devices=devices)
        except PipelineInterrupted as exc:  # OES: its stage checkpoints are saved
            raise DatasetInterrupted(exc.signum) from None
        if result.interrupted:
            raise DatasetInterrupted(result.interrupted)
        for j, i in enumerate(group):
            partial, final = os.path.join(out, f".partial-{labels[i]}"), os.path.join(out, labels[i])
            if os.path.isdir(final):
                continue  # published before a kill cut the group short: complete, and left untouched
            shutil.rmtree(partial, ignore_errors=True)
            p = problems[j]
            size = "x".join(map(str, p.image_shape[:2]))
            metrics = write_image_report(
                partial, p, result, j if len(group) > 1 else None, label=labels[i],
                config={**config, "images": [specs[i]], "task": task_of(i).options()},
                title=f"{run.method} · {run.task.name} · {labels[i]} ({size}, σ={run.task.sigma:g})",
                evaluate=lambda x, p=p, task=task_of(i): task.task_metrics(p, x), image=specs[i])
            os.replace(partial, final)
            log(f"{labels[i]}: input {metrics['psnr_input']:.2f} dB, final {metrics['psnr_final']:.2f} dB, "
                f"peak (oracle) {metrics['psnr_peak_oracle']:.2f} dB -> {final}")
        if os.path.exists(checkpoint):
            os.remove(checkpoint)
        ran += len(group)
        compile_seconds += result.compile_seconds
        mesh = image_mesh(devices, len(group)) if len(group) > 1 else None
        used = [str(d) for d in (mesh.devices.ravel() if mesh is not None else devices[:1])]
        for home in used:  # each device of the mesh holds an equal, contiguous share of the group
            per_device[home] += len(group) // len(used)
            busy[home] += result.run_seconds + result.compile_seconds + result.init_seconds
    wall = time.perf_counter() - started
    throughput = {"process_index": process_index, "images_run": ran, "wall_seconds": wall,
                  "images_per_hour": ran / wall * 3600 if ran else None, "compile_seconds": compile_seconds,
                  "devices": [{"device": d, "images": per_device[d], "busy_fraction": busy[d] / wall}
                              for d in per_device]}
    write_json(record, throughput)
    if process_count > 1:
        sync_global_devices("dipjax dataset: done")  # every process's images and throughput are written
    if process_index != 0:
        return None
    processes = []
    for k in range(process_count):
        with open(os.path.join(out, f".throughput-{k}.json")) as f:
            processes.append(json.load(f))
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(out, CHECKPOINTS))  # empty once every group has finished
    return write_summary(out, labels, config, processes)


def _averaged_keys(rows: list[dict]) -> list[str]:
    keys = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and k not in NOT_AVERAGED]
    return [k for k in keys if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)
                                   for r in rows)]


def summarise(rows: list[dict]) -> dict[str, dict[str, float | None]]:
    """``{metric: {"mean", "std", "min", "max"}}`` over the images (std with ``ddof = 1``; None for one image)."""
    stats = {}
    for k in _averaged_keys(rows):
        v = np.asarray([r[k] for r in rows], np.float64)
        stats[k] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None,
                    "min": float(v.min()), "max": float(v.max())}
    return stats


def write_summary(out: str, labels: Sequence[str], config: dict, processes: list[dict]) -> dict[str, Any]:
    """Read every image's ``metrics.json`` and ``history.json`` under ``out`` and write the summary files."""
    rows, curves = [], []
    for lab in labels:
        with open(os.path.join(out, lab, "metrics.json")) as f:
            rows.append({k: v for k, v in json.load(f).items() if k != "config"})
        with open(os.path.join(out, lab, "history.json")) as f:
            curves.append(json.load(f).get("psnr"))
    stats = summarise(rows)
    ran = sum(p["images_run"] for p in processes)
    wall = max(p["wall_seconds"] for p in processes)
    summary = {"images": len(rows), "config": {k: v for k, v in config.items() if k != "images"},
               "metrics": stats, "per_image": rows,
               "throughput": {"images_run": ran, "images_reused": len(rows) - ran, "wall_seconds": wall,
                              "images_per_hour": ran / wall * 3600 if ran and wall else None,
                              "compile_seconds": sum(p["compile_seconds"] for p in processes),
                              "processes": processes}}
    write_json(os.path.join(out, "summary.json"), summary)
    keys = ["image"] + _averaged_keys(rows)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(keys)
    for r in rows:
        writer.writerow([r["image"]] + [r[k] for k in keys[1:]])
    for name in ("mean", "std"):
        writer.writerow([name] + [stats[k][name] for k in keys[1:]])
    with atomic_path(os.path.join(out, "summary.csv")) as tmp, open(tmp, "w") as f:
        f.write(text.getvalue())
    with atomic_path(os.path.join(out, "summary.md")) as tmp, open(tmp, "w") as f:
        f.write(markdown_table(rows, stats))
    if all(c is not None for c in curves) and len({len(c) for c in curves}) == 1:
        plot_psnr_band(os.path.join(out, "psnr_band.png"), np.asarray(curves, np.float64),
                       title=f"{config['method']} · {config['task']['task']} · {len(rows)} images")
    return strict_json(summary)


def _cell(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(rows: list[dict], stats: dict) -> str:
    """Per-image PSNR/SSIM (input, final, oracle peak, stopped iterate when present) and mean ± std."""
    columns = [c for c in ("psnr_input", "psnr_final", "ssim_final", "psnr_peak_oracle", "iter_peak_oracle",
                           "psnr_stop", "iter_stop", "seconds") if c in stats]
    lines = ["| image | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for r in rows:
        lines.append(f"| {r['image']} | " + " | ".join(_cell(r[c], 4 if c.startswith("ssim") else 2)
                                                       for c in columns) + " |")
    cells = [f"{_cell(stats[c]['mean'], 4 if c.startswith('ssim') else 2)} ± "
             f"{_cell(stats[c]['std'], 4 if c.startswith('ssim') else 2)}" for c in columns]
    lines.append("| **mean ± std** | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
