"""The ``dipjax`` command: ``dipjax reconstruct ...``, ``dipjax demo``, and ``dipjax tasks`` / ``dipjax methods``
(the tables of registered tasks and methods).

The task options and the method hyper-parameters are not listed here: they come from the task registry
(:mod:`dipjax.tasks`: every option field of every task) and the method registry (:mod:`dipjax.methods`: the
:class:`~dipjax.methods.Option` s each method exposes). An option that the chosen task or method does not have is
refused. The arguments become one frozen :class:`~dipjax.run.RunConfig`; ``--dry-run`` prints its resolved form as
JSON and writes nothing, and ``metrics.json`` records the same.

Every run uses dipjax's XLA options (:mod:`dipjax.xla_flags`: on CPU about twice as fast) and JAX's persistent
compilation cache (:mod:`dipjax.compilation_cache`; ``DIPJAX_COMPILATION_CACHE=off``
turns it off), so a second run of the same configuration does not compile again.

Bad input (missing or unreadable image, unknown task/method/image, an option of another task or method, a value an
option cannot take, a size the network cannot take, an existing non-empty ``--out`` without ``--overwrite``) ends
with exit status 2 and one line on stderr naming the problem; everything is checked before anything is written.
A run whose network output turns non-finite (a learning rate too large, say) ends at the next sync, writes its
results from the last finite estimate (``diverged_at`` in ``metrics.json``) and exits with status 3 and one line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys

DEMO_OUT = "dipjax-demo"


class UsageError(Exception):
    """A problem with the user's input; reported as one line, exit status 2."""


class RunDiverged(Exception):
    """The network output of some image turned non-finite; its results hold the last finite estimate. Exit status 3."""


EXIT_DIVERGED = 3


class Interrupted(Exception):
    """SIGINT or SIGTERM ended the run; exit status 128 + the signal number (130, 143), as a shell reports it."""

    def __init__(self, signum: int, message: str):
        self.signum = signum
        super().__init__(message)


def _terminate(signum, frame):
    raise Interrupted(signum, "terminated before the run started; no results were written")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block
        raise UsageError(message)


def _positive_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _task_arguments(parser) -> None:
    """One option per field of any registered task (shared fields once); ``None`` means "the task's default"."""
    from dipjax.tasks import TASKS, TaskConfig, task_options

    group = parser.add_argument_group("task options (each applies to the tasks named in its help)")
    fields = {f.name: (f, ["every task"], list(f.metadata.get("choices") or ())) for f in dataclasses.fields(TaskConfig)}
    for name, cls in TASKS.items():
        for f in task_options(cls):
            field, tasks, choices = fields.setdefault(f.name, (f, [], []))
            tasks.append(name)
            choices.extend(c for c in f.metadata.get("choices") or () if c not in choices)
    for name, (f, tasks, choices) in fields.items():
        group.add_argument(_flag(name), dest=f"task_{name}", default=None, type=type(f.default),
                           choices=choices or None, metavar=None if choices else name.upper(),
                           help=f"{f.metadata['help']} ({', '.join(tasks)})")


def _method_arguments(parser) -> None:
    """One option per hyper-parameter any registered method exposes."""
    from dipjax.methods import METHODS

    group = parser.add_argument_group("method hyper-parameters (default: the method's published value)")
    options: dict[str, tuple] = {}
    for name, spec in METHODS.items():
        for o in spec.options:
            options.setdefault(o.flag, (o, spec, []))[2].append(name)
    for flag, (o, spec, methods) in options.items():
        default = next(f.default for f in dataclasses.fields(spec.method) if f.name == o.field)
        kind = type(default) if o.convert is None and isinstance(default, (int, float)) else str
        group.add_argument(f"--{flag}", dest=f"method_{flag}", default=None, type=kind,
                           help=f"{o.help} ({', '.join(methods)})")


def _run_arguments(r) -> None:
    """The options of one method configuration, shared by ``reconstruct`` and ``dataset``."""
    from dipjax.methods import METHODS
    from dipjax.run import STOPPERS
    from dipjax.tasks import TASKS

    r.add_argument("--task", required=True, choices=list(TASKS), help="; ".join(f"{k}: {v.summary}"
                                                                               for k, v in TASKS.items()))
    r.add_argument("--method", default="dip", choices=list(METHODS),
                   help="; ".join(f"{k}: {v.label}" for k, v in METHODS.items()))
    r.add_argument("--steps", type=_positive_int, default=None,
                   help="network updates (default: the method's published count for the task; `dipjax methods`)")
    r.add_argument("--size", type=_positive_int, default=256, help="centre-crop and resize to SIZE x SIZE")
    r.add_argument("--width", type=_positive_int, default=None,
                   help="network width (method default: skip nets 128, U-Nets 64, Deep Decoder k 128, ...)")
    r.add_argument("--scales", type=_positive_int, default=None,
                   help="network levels / upsamplings / layers (method default)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True, help="output folder (one sub-folder per image)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace the results of the previous run in --out (only the files that run wrote)")
    r.add_argument("--checkpoint-every", type=_positive_int, default=None, metavar="N",
                   help=f"save the run's state every N steps (reconstruct: --out/{CHECKPOINT}; dataset: "
                        "--out/.checkpoints; it is always saved when Ctrl-C or SIGTERM ends a run, and removed when "
                        "the run completes)")
    r.add_argument("--dry-run", action="store_true",
                   help="print the resolved configuration as JSON and exit without computing or writing anything")
    color = r.add_mutually_exclusive_group()
    color.add_argument("--gray", action="store_true", help="convert images to grayscale")
    color.add_argument("--rgb", action="store_true", help="convert images to RGB")
    r.add_argument("--stop", choices=STOPPERS, default=None,
                   help="early-stopping rule of ES-DIP: windowed (wmv) or exponential (emv) moving variance")
    r.add_argument("--stop-window", type=_positive_int, default=100, help="ES-WMV window W (default 100)")
    r.add_argument("--stop-patience", type=_positive_int, default=1000, help="ES-WMV/EMV patience P (default 1000)")
    r.add_argument("--stop-early", action="store_true",
                   help="end the run once the rule has fired for every image (default: run all --steps)")
    r.add_argument("--independent-keys", action="store_true",
                   help="give each image of a batch its own network and input (default: the same, as one seed)")
    r.add_argument("--batch", choices=("vmap", "sequential"), default=None, help="batch strategy (backend default)")
    r.add_argument("--loop", choices=("host", "scan"), default=None, help="loop strategy (backend default)")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument("--no-ssim", action="store_true",
                   help="skip the per-step SSIM curve (a real cost at 512²); the final SSIM is still reported")
    _task_arguments(r)
    _method_arguments(r)


def _build_parser():
    from dipjax.data import BUNDLED, BUNDLED_DICOM

    p = _Parser(prog="dipjax", description="Deep Image Prior reconstructions in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("reconstruct", help="reconstruct one or more images (several --image run as one batch)")
    r.add_argument("--image", action="append", default=None,
                   help=f"bundled name ({', '.join(sorted(BUNDLED) + sorted(BUNDLED_DICOM))}) or a "
                        "PNG/JPEG/TIFF/NPY/DICOM path; repeat for a batch (not with --kspace)")
    r.add_argument("--dicom", action="append", dest="image", metavar="FILE",
                   help="a DICOM file (the same as --image FILE.dcm: rescaled values, min-max normalised)")
    r.add_argument("--resume", action="store_true",
                   help=f"continue the run in --out from its {CHECKPOINT} (the same command, plus --resume; or "
                        "`dipjax resume OUT`): it ends with the numbers of the uninterrupted run")
    _run_arguments(r)

    ds = sub.add_parser("dataset", help="reconstruct every image of a folder/glob/list with one configuration, "
                                        "over every device, resumable by image, with a summary table")
    ds.add_argument("--inputs", action="append", required=True, metavar="SPEC",
                    help="a folder (its PNG/JPEG/TIFF/NPY/DICOM files; for --task mri also fastMRI .h5 files), a "
                         "glob, a .txt/.lst list file (one path per line) or one image; repeat to add more")
    ds.add_argument("--devices", type=_positive_int, default=None,
                    help="use the first N local devices (default: all)")
    ds.add_argument("--group", type=_positive_int, default=None,
                    help="images per engine call (default: one per device)")
    ds.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                    help="multi-host: jax.distributed's coordinator address (with --num-processes, --process-id)")
    ds.add_argument("--num-processes", type=_positive_int, default=None)
    ds.add_argument("--process-id", type=int, default=None)
    _run_arguments(ds)

    d = sub.add_parser("demo", help="denoise a bundled image (camera, σ = 25) and write the results")
    d.add_argument("--out", default=DEMO_OUT)
    d.add_argument("--overwrite", action="store_true")
    d.add_argument("--steps", type=_positive_int, default=1200)
    d.add_argument("--size", type=_positive_int, default=128)
    d.add_argument("--width", type=_positive_int, default=32)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-progress", action="store_true")

    res = sub.add_parser("resume", help="continue an interrupted run from its checkpoint: dipjax resume OUT")
    res.add_argument("out", help="the --out folder of the interrupted run")
    sub.add_parser("tasks", help="print the table of registered tasks and their options (Markdown)")
    sub.add_parser("methods", help="print the table of registered methods: published steps per task, options")
    return p


#: What a run keeps in its ``--out`` besides the results: the lock it holds while it runs, and the list of the files
#: it wrote (which ``--overwrite`` removes, and only those).
LOCK, MANIFEST, CHECKPOINT = ".dipjax.lock", ".dipjax-run.json", "checkpoint.npz"


def _checkpoint_files(out: str) -> set[str]:
    """The checkpoints in ``out``: ``checkpoint.npz``, and a pipeline's stage checkpoints ``checkpoint-*.npz``."""
    stem = os.path.splitext(CHECKPOINT)[0]
    try:
        names = os.listdir(out)
    except OSError:
        return set()
    return {n for n in names if n == CHECKPOINT or (n.startswith(stem + "-") and n.endswith(".npz"))}


def _check_out(out: str, overwrite: bool, resume: bool = False) -> None:
    """Refuse an ``--out`` that cannot be a fresh (or, with ``--overwrite``, a previous run's; with ``--resume``, an
    interrupted run's) results folder."""
    if resume and not _checkpoint_files(out):
        raise UsageError(f"nothing to resume in {out!r}: it holds no {CHECKPOINT}")
    if not out.strip():
        raise UsageError("--out must name a folder, got an empty string")
    if os.path.islink(out) and not os.path.exists(out):
        raise UsageError(f"--out {out!r} is a symbolic link to {os.readlink(out)!r}, which does not exist")
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out!r} exists and is not a folder")
    if os.path.isdir(out) and set(os.listdir(out)) - {LOCK, MANIFEST} and not (overwrite or resume):
        raise UsageError(f"output folder {out!r} exists and is not empty; pass --overwrite or choose another --out")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot create --out {out!r}: folder {parent!r} does not exist")
    where = out if os.path.isdir(out) else parent
    if not os.access(where, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write into --out {out!r}: no write permission on {where!r}")


def _lock_out(out: str, name: str, busy: str):
    """Create ``out`` and take an exclusive lock on its file ``name``; ``busy`` is the message when another process
    holds it. Returns the open lock file: the lock lasts until it is closed or the process ends."""
    try:
        os.makedirs(out, exist_ok=True)
        lock = open(os.path.join(out, name), "a")
    except OSError as exc:
        raise UsageError(f"cannot write into --out {out!r}: {exc.strerror}") from None
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return lock
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise UsageError(busy) from None
    return lock


def _claim_out(out: str, overwrite: bool):
    """Create ``out``, take its lock (a second run on the same folder exits 2) and, with ``overwrite``, remove the
    files the previous run there wrote. Returns the open lock file."""
    lock = _lock_out(out, LOCK, f"another dipjax run is writing into {out!r}; wait for it or choose another --out")
    if overwrite:
        _remove_previous_run(out)
    return lock


def _remove_previous_run(out: str) -> None:
    """Delete the files a previous run listed in ``out``'s manifest, and the folders that leaves empty."""
    try:
        with open(os.path.join(out, MANIFEST)) as f:
            files = json.load(f)["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no manifest (or not ours): nothing is known to be the previous run's
    root = os.path.realpath(out)
    for rel in files:
        path = os.path.realpath(os.path.join(out, rel))
        if path.startswith(root + os.sep) and os.path.isfile(path):
            os.remove(path)
            folder = os.path.dirname(path)
            if folder != root and not os.listdir(folder):
                os.rmdir(folder)
    os.remove(os.path.join(out, MANIFEST))


def _release_out(out: str, lock, remove: bool) -> None:
    """Give up ``out`` after a run that wrote nothing: close the lock and, if this run created the folder, remove
    its record, lock and the folder (so a refused run leaves nothing behind)."""
    lock.close()
    if remove:
        for name in (MANIFEST, LOCK):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(out, name))
        with contextlib.suppress(OSError):
            os.rmdir(out)


def _read_manifest(out: str, name: str = MANIFEST) -> dict:
    """A run's record in ``out`` (``{}`` when there is none or it cannot be read)."""
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _comparable(config: dict) -> dict:
    """A resolved configuration as its JSON record holds it, without the command line: equal for equal runs."""
    from dipjax.report import strict_json

    return json.loads(json.dumps(strict_json({k: v for k, v in config.items() if k != "command"})))


def _write_manifest(out: str, record: dict, folders: list[str] = ()) -> None:
    """The run's record in ``out``: its arguments, resolved configuration and the files it wrote (``--overwrite``
    removes those; ``dipjax resume`` reads the arguments)."""
    from dipjax.report import write_json

    files = {os.path.relpath(os.path.join(folder, name), out) for folder in folders
             for name in os.listdir(folder) if not name.startswith(".")}
    files |= _checkpoint_files(out)
    write_json(os.path.join(out, MANIFEST), {**record, "files": sorted(files | set(record.get("files", ())))})


def _check_resumable(out: str, config: dict) -> dict:
    """The interrupted run's record, refused unless its configuration is this command's."""
    record = _read_manifest(out)
    saved = {k: v for k, v in record.get("config", {}).items() if k != "command"}
    mine = _comparable(config)
    if saved != mine:
        differ = sorted(k for k in set(saved) | set(mine) if saved.get(k) != mine.get(k))
        raise UsageError(f"--resume: this command's configuration differs from the run in {out!r} "
                         f"({', '.join(differ) or 'no record of it'}); repeat that run's command, or use "
                         f"`dipjax resume {out}`")
    return record


def _option_error(exc) -> UsageError:
    """An OptionError as the CLI names it (``--flag message``), any other ValueError as its first line."""
    from dipjax.validation import OptionError

    if isinstance(exc, OptionError):
        return UsageError(f"{_flag(exc.option)} {exc.message}")
    return UsageError(str(exc).splitlines()[0])


def run_config(args):
    """The arguments as a :class:`~dipjax.run.RunConfig`; refuses options of another task or method."""
    from dipjax.methods import get_method
    from dipjax.run import RunConfig
    from dipjax.tasks import get_task
    from dipjax.validation import OptionError

    task_cls = get_task(args.task)
    task_fields = {f.name for f in dataclasses.fields(task_cls)}
    options = {}
    for key, value in vars(args).items():
        if key.startswith("task_") and value is not None:
            name = key[len("task_"):]
            if name not in task_fields:
                raise UsageError(f"{_flag(name)} does not apply to task {args.task}")
            options[name] = value
    spec = get_method(args.method)
    settings = {}
    for key, value in vars(args).items():
        if key.startswith("method_") and value is not None:
            flag = key[len("method_"):].replace("_", "-")
            option = spec.option(flag)
            if option is None:
                raise UsageError(f"--{flag} does not apply to {args.method}")
            try:
                settings[option.field] = option.convert(value) if option.convert else value
            except (ValueError, OSError) as exc:
                raise UsageError(f"--{flag}: {str(exc).splitlines()[0]}") from None
    try:
        return RunConfig(task=task_cls(**options), method=args.method, images=tuple(args.image or ()), size=args.size,
                         channels=1 if args.gray else 3 if args.rgb else None, width=args.width, scales=args.scales,
                         method_options=tuple(settings.items()), steps=args.steps, seed=args.seed, stop=args.stop,
                         stop_window=args.stop_window, stop_patience=args.stop_patience, stop_early=args.stop_early,
                         independent_keys=args.independent_keys, batch=args.batch, loop=args.loop,
                         track_ssim=not args.no_ssim)
    except (OptionError, ValueError) as exc:
        raise _option_error(exc) from None


def run_reconstruct(args, argv=None) -> list[dict]:
    """Validate everything, then reconstruct and write one sub-folder per image (or, with ``--dry-run``, print the
    resolved configuration). Returns the metrics (or ``[]`` for a dry run)."""
    from dipjax.data import ImageError
    from dipjax.engine import PipelineInterrupted
    from dipjax.fastmri import FastMRIError
    from dipjax.report import strict_json, write_image_report
    from dipjax.validation import OptionError

    run = run_config(args)
    if not args.dry_run:
        _check_out(args.out, args.overwrite, args.resume)
    try:
        if run.task.reads_file():  # measured data: the file fixes the image size
            problems, labels, tasks = run.load_problems()
            shape = tuple(problems[0].x_true.shape)
        else:
            images, labels = run.load_images()
            if len({im.shape[-1] for im in images}) > 1:  # a batch shares one network shape
                gray = [lab for lab, im in zip(labels, images) if im.shape[-1] == 1]
                raise UsageError(f"the batch mixes grayscale ({', '.join(gray)}) and colour images; pass --gray or "
                                 "--rgb, or run them separately")
            shape = images[0].shape
    except (ImageError, FastMRIError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    except ValueError as exc:
        raise _option_error(exc) from None
    try:
        method = run.build_method(shape)
    except OptionError as exc:
        raise _option_error(exc) from None
    except ValueError as exc:
        what = f"the {shape[0]}x{shape[1]} grid of --kspace" if run.task.reads_file() else f"--size {run.size}"
        raise UsageError(f"{what} does not fit the {run.method} network: {exc}") from None
    config = run.resolved(method)
    config["command"] = "dipjax " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.dry_run:
        print(json.dumps(strict_json(config), indent=1))
        return []
    if not run.task.reads_file():
        try:
            # The operators validate their own configuration (SR factor vs size, CS matrix size, kernel vs image).
            problems = run.simulate(images)
        except ValueError as exc:
            raise _option_error(exc) from None
        tasks = [run.task] * len(problems)
    previous = _check_resumable(args.out, config) if args.resume else {}
    created = not os.path.exists(args.out)
    lock = _claim_out(args.out, args.overwrite and not args.resume)
    argv = list(argv if argv is not None else sys.argv[1:])
    record = {"argv": [a for a in argv if a not in ("--resume", "--overwrite")], "config": strict_json(config),
              "files": previous.get("files", [])}
    _write_manifest(args.out, record)
    checkpoint = os.path.join(args.out, CHECKPOINT)
    try:
        result = run.execute(method, problems, progress=not args.no_progress, interruptible=True,
                             checkpoint=checkpoint, checkpoint_every=args.checkpoint_every or 0, resume=args.resume)
    except (ValueError, MemoryError) as exc:  # a method that refuses this task, a checkpoint of another run, a run
        _release_out(args.out, lock, created and not args.resume)  # too large for the machine
        if isinstance(exc, MemoryError):
            raise
        raise _option_error(exc) from None
    except PipelineInterrupted as exc:  # OES: its stages' checkpoints are saved; results come when it completes
        _write_manifest(args.out, record)
        lock.close()
        raise Interrupted(exc.signum, f"interrupted during {exc}; the checkpoints are in {args.out} (results are "
                          f"written when the run completes); continue with: dipjax resume {args.out}") from None
    rows, folders = [], []
    for i, (lab, p) in enumerate(zip(labels, problems)):
        folder = os.path.join(args.out, lab)
        folders.append(folder)
        index = i if len(problems) > 1 else None
        size = "x".join(map(str, p.image_shape[:2]))
        metrics = write_image_report(folder, p, result, index, label=lab, config=config,
                                     title=f"{run.method} · {run.task.name} · {lab} ({size}, σ={run.task.sigma:g})",
                                     evaluate=lambda x, p=p, task=tasks[i]: task.task_metrics(p, x),
                                     image=run.images[i] if i < len(run.images) else None)
        if "masks" in result.extras:  # OES: the learned (or transferred) mask, reusable with --oes-mask
            result.extras["masks"][i].save(os.path.join(folder, "oes_mask.npz"), overwrite=args.overwrite)
        rows.append(metrics)
        stopped = (f", {run.stop} stop {metrics['psnr_stop']:.2f} dB @ {metrics['iter_stop']}"
                   if "psnr_stop" in metrics else "")
        print(f"{lab}: input {metrics['psnr_input']:.2f} dB, final {metrics['psnr_final']:.2f} dB, "
              f"peak (oracle) {metrics['psnr_peak_oracle']:.2f} dB @ {metrics['iter_peak_oracle']}{stopped} -> {folder}")
    import jax

    if not result.interrupted and os.path.exists(checkpoint):
        os.remove(checkpoint)  # the run is complete: nothing to resume
    record["files"] = [f for f in record["files"] if os.path.exists(os.path.join(args.out, f))]
    _write_manifest(args.out, record, folders)
    lock.close()
    print(f"{result.steps} steps in {result.run_seconds:.1f} s (+{result.compile_seconds:.1f} s compile) on "
          f"{jax.default_backend()}; results in {os.path.abspath(args.out)}")
    if result.interrupted:
        raise Interrupted(result.interrupted, f"interrupted at iteration {result.steps} of {run.steps}; the results "
                          f"so far are in {args.out} (metrics.json: complete false); continue with: dipjax resume "
                          f"{args.out}")
    diverged = [f"{m['image']} at iteration {m['diverged_at']}" for m in rows if m["diverged_at"]]
    if diverged:
        raise RunDiverged(f"the network output turned non-finite ({', '.join(diverged)}); the results hold the last "
                          "finite estimate (metrics.json: diverged_at); try a smaller learning rate (--lr)")
    return rows


DATASET_MANIFEST = ".dipjax-dataset.json"


def _start_distributed(args) -> None:
    """``jax.distributed.initialize`` from ``--coordinator``, ``--num-processes`` and ``--process-id`` (all or none)."""
    given = [args.coordinator, args.num_processes, args.process_id]
    if all(v is None for v in given):
        return
    if any(v is None for v in given):
        raise UsageError("--coordinator, --num-processes and --process-id go together (one process per host)")
    if not 0 <= args.process_id < args.num_processes:
        raise UsageError(f"--process-id must be from 0 to {args.num_processes - 1}, got {args.process_id}")
    import jax

    jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                               process_id=args.process_id)


def _claim_dataset_out(out: str, config: dict, labels: list[str], overwrite: bool, process: int):
    """Lock ``out`` for this process and check that it is fresh or holds this configuration's earlier (unfinished
    or finished) run, which continues; with ``overwrite`` an earlier dataset run's files are removed first. Returns
    the open lock."""
    from dipjax.dataset import CHECKPOINTS, SUMMARY_FILES

    _check_out(out, overwrite=True)
    mine = _comparable(config)
    saved = _read_manifest(out, DATASET_MANIFEST)
    ours = {DATASET_MANIFEST, CHECKPOINTS} | {n for n in os.listdir(out) if n.startswith(".dipjax-dataset.lock")} \
        if os.path.isdir(out) else set()
    fresh = not os.path.isdir(out) or not set(os.listdir(out)) - ours
    replace = not fresh and overwrite  # --overwrite: start again, even with the same configuration
    if not fresh and saved.get("config") != mine and not overwrite:
        what = "another configuration's dataset run" if saved else "files of something else"
        raise UsageError(f"output folder {out!r} holds {what}; pass --overwrite or choose another --out")
    if replace and not saved:
        raise UsageError(f"--overwrite removes only a dataset run's results, and {out!r} holds none; choose "
                         "another --out")
    lock = _lock_out(out, f".dipjax-dataset.lock.{process}",
                     f"another dipjax dataset process {process} is writing into {out!r}")
    if replace and process == 0:  # the earlier run's files go, and only those
        import shutil

        for name in saved.get("labels", []) + list(SUMMARY_FILES) + [CHECKPOINTS]:
            path = os.path.join(out, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.isfile(path):
                os.remove(path)
    if process == 0:
        from dipjax.report import write_json

        write_json(os.path.join(out, DATASET_MANIFEST), {"config": mine, "labels": labels})
    return lock


def run_dataset_command(args, argv=None) -> dict | None:
    """``dipjax dataset``: list the inputs, resolve one configuration, run every image and write the summary."""
    from dipjax.data import FILE_SUFFIXES, ImageError
    from dipjax.dataset import DatasetInterrupted, dataset_items, first_problem_shape, list_inputs, run_dataset
    from dipjax.fastmri import FastMRIError
    from dipjax.tasks import get_task
    from dipjax.report import strict_json
    from dipjax.validation import OptionError

    _start_distributed(args)
    import jax

    try:  # images, or the task's measured-data files (fastMRI .h5 for mri)
        args.image = list_inputs(args.inputs, FILE_SUFFIXES + get_task(args.task).file_suffixes)
    except ImageError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    run = run_config(args)
    if run.task.reads_file():
        raise UsageError(f"dipjax dataset takes {run.task.name}'s data files as --inputs (a folder or list of them), "
                         f"not --{run.task.file_option.replace('_', '-')}")
    devices = jax.local_devices()
    if args.devices:
        if args.devices > len(devices):
            raise UsageError(f"--devices {args.devices}: this process sees {len(devices)} device(s)")
        devices = devices[:args.devices]
    try:
        items = dataset_items(run)
        method = run.build_method(first_problem_shape(run, items))
    except (ImageError, FastMRIError) as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    except (OptionError, ValueError) as exc:
        raise _option_error(exc) from None
    config = run.resolved(method)
    config["command"] = "dipjax " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.dry_run:
        print(json.dumps(strict_json({**config, "devices": [str(d) for d in devices],
                                      "group": args.group or len(devices)}), indent=1))
        return None
    labels = [item.label for item in items]
    process, processes = jax.process_index(), jax.process_count()
    created = not os.path.exists(args.out)
    lock = _claim_dataset_out(args.out, config, labels, args.overwrite, process)
    try:
        summary = run_dataset(run, args.out, config=config, devices=devices, group_size=args.group,
                              checkpoint_every=args.checkpoint_every or 0, progress=not args.no_progress,
                              items=items)
    except (ImageError, FastMRIError, OptionError, ValueError, MemoryError) as exc:  # refused before any image ran:
        if created and all(name.startswith(".") for name in os.listdir(args.out)):  # leave nothing behind
            import shutil

            shutil.rmtree(args.out, ignore_errors=True)
        if isinstance(exc, MemoryError):
            raise
        raise (UsageError(str(exc).splitlines()[0]) if isinstance(exc, ImageError) else _option_error(exc)) \
            from None
    except DatasetInterrupted as exc:
        raise Interrupted(exc.signum, f"interrupted; finished images are in {args.out}, the unfinished group's "
                          "checkpoint too: run the same command again to continue") from None
    finally:
        lock.close()
    if summary is not None:
        t = summary["throughput"]
        rate = f"{t['images_per_hour']:.0f} images/hour" if t["images_per_hour"] else "nothing left to run"
        print(f"{summary['images']} images ({t['images_run']} run now, {t['images_reused']} reused), {rate}, on "
              f"{len(devices)} {jax.default_backend()} device(s) × {processes} process(es); summary in "
              f"{os.path.join(os.path.abspath(args.out), 'summary.md')}")
        with open(os.path.join(args.out, "summary.md")) as f:
            print(f.read(), end="")
    return summary


def main(argv=None) -> int:
    import signal

    from dipjax.xla_flags import apply_default_flags

    apply_default_flags()  # before anything starts a JAX backend

    previous_term = signal.signal(signal.SIGTERM, _terminate)  # the run loop handles both signals itself
    try:
        args = _build_parser().parse_args(argv)
        if args.command == "tasks":
            from dipjax.tasks import markdown_table

            print(markdown_table())
        elif args.command == "methods":
            from dipjax.methods.registry import markdown_table

            print(markdown_table())
        else:
            from dipjax.compilation_cache import enable_compilation_cache

            enable_compilation_cache()
            if args.command == "resume":
                saved = _read_manifest(args.out).get("argv")
                if not _checkpoint_files(args.out) or not saved:
                    raise UsageError(f"nothing to resume in {args.out!r}: no {CHECKPOINT} and run record there")
                argv = list(saved) + ["--resume"]
                args = _build_parser().parse_args(argv)
            if args.command == "demo":
                argv = ["reconstruct", "--task", "denoise", "--image", "camera", "--sigma", "25", "--steps",
                        str(args.steps), "--size", str(args.size), "--width", str(args.width), "--seed",
                        str(args.seed), "--out", args.out] + (["--overwrite"] if args.overwrite else []) + \
                    (["--no-progress"] if args.no_progress else [])
                args = _build_parser().parse_args(argv)
            if args.command == "dataset":
                run_dataset_command(args, argv)
            else:
                run_reconstruct(args, argv)
    except UsageError as exc:
        print(f"dipjax: error: {exc}", file=sys.stderr)
        return 2
    except RunDiverged as exc:
        print(f"dipjax: error: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except Interrupted as exc:
        print(f"dipjax: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("dipjax: interrupted before the run started (or by a second Ctrl-C); nothing more was written",
              file=sys.stderr)
        return 130
    except MemoryError as exc:
        reason = (str(exc).splitlines() or ["out of memory"])[0]
        print(f"dipjax: error: not enough memory for this run ({reason}); use a smaller --size, --width or batch",
              file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    return 0


if __name__ == "__main__":
    sys.exit(main())
