"""The ``dipjax`` command: ``dipjax reconstruct ...``, ``dipjax demo``, and ``dipjax tasks`` / ``dipjax methods``
(the tables of registered tasks and methods).

The task options and the method hyper-parameters are not listed here: they come from the task registry
(:mod:`dipjax.tasks`: every option field of every task) and the method registry (:mod:`dipjax.methods`: the
:class:`~dipjax.methods.Option` s each method exposes). An option that the chosen task or method does not have is
refused. The arguments become one frozen :class:`~dipjax.run.RunConfig`; ``--dry-run`` prints its resolved form as
JSON and writes nothing, and ``metrics.json`` records the same.

Bad input (missing or unreadable image, unknown task/method/image, an option of another task or method, a value an
option cannot take, a size the network cannot take, an existing non-empty ``--out`` without ``--overwrite``) ends
with exit status 2 and one line on stderr naming the problem; everything is checked before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

DEMO_OUT = "dipjax-demo"


class UsageError(Exception):
    """A problem with the user's input; reported as one line, exit status 2."""


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


def _build_parser():
    from dipjax.data import BUNDLED, BUNDLED_DICOM
    from dipjax.methods import METHODS
    from dipjax.run import STOPPERS
    from dipjax.tasks import TASKS

    p = _Parser(prog="dipjax", description="Deep Image Prior reconstructions in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("reconstruct", help="reconstruct one or more images (several --image run as one batch)")
    r.add_argument("--task", required=True, choices=list(TASKS), help="; ".join(f"{k}: {v.summary}"
                                                                               for k, v in TASKS.items()))
    r.add_argument("--image", action="append", default=None,
                   help=f"bundled name ({', '.join(sorted(BUNDLED) + sorted(BUNDLED_DICOM))}) or a "
                        "PNG/JPEG/TIFF/NPY/DICOM path; repeat for a batch (not with --kspace)")
    r.add_argument("--dicom", action="append", dest="image", metavar="FILE",
                   help="a DICOM file (the same as --image FILE.dcm: rescaled values, min-max normalised)")
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
    r.add_argument("--overwrite", action="store_true", help="allow writing into an existing non-empty --out")
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

    d = sub.add_parser("demo", help="denoise a bundled image (camera, σ = 25) and write the results")
    d.add_argument("--out", default=DEMO_OUT)
    d.add_argument("--overwrite", action="store_true")
    d.add_argument("--steps", type=_positive_int, default=1200)
    d.add_argument("--size", type=_positive_int, default=128)
    d.add_argument("--width", type=_positive_int, default=32)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-progress", action="store_true")

    sub.add_parser("tasks", help="print the table of registered tasks and their options (Markdown)")
    sub.add_parser("methods", help="print the table of registered methods: published steps per task, options")
    return p


def _check_out(out: str, overwrite: bool) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out!r} exists and is not a folder")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise UsageError(f"output folder {out!r} exists and is not empty; pass --overwrite or choose another --out")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot create --out {out!r}: folder {parent!r} does not exist")


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
    import numpy as np

    from dipjax.data import ImageError
    from dipjax.fastmri import FastMRIError
    from dipjax.report import strict_json, write_image_report
    from dipjax.validation import OptionError

    run = run_config(args)
    if not args.dry_run:
        _check_out(args.out, args.overwrite)
    try:
        if run.task.reads_file():  # measured data: the file fixes the image size
            problems, labels = run.load_problems()
            shape = tuple(problems[0].x_true.shape)
        else:
            images, labels = run.load_images()
            if len({im.shape[-1] for im in images}) > 1:  # mixed gray and colour: promote to RGB
                images = [np.repeat(im, 3, -1) if im.shape[-1] == 1 else im for im in images]
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
            problems = run.simulate(images, labels)
        except ValueError as exc:
            raise _option_error(exc) from None
    try:
        result = run.execute(method, problems, progress=not args.no_progress)
    except ValueError as exc:  # e.g. a method that refuses this task
        raise _option_error(exc) from None
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for i, (lab, p) in enumerate(zip(labels, problems)):
        folder = os.path.join(args.out, lab)
        index = i if len(problems) > 1 else None
        size = "x".join(map(str, p.image_shape[:2]))
        metrics = write_image_report(folder, p, result, index, label=lab, config=config,
                                     title=f"{run.method} · {run.task.name} · {lab} ({size}, σ={run.task.sigma:g})",
                                     evaluate=lambda x, p=p: run.task.task_metrics(p, x))
        if "masks" in result.extras:  # OES: the learned (or transferred) mask, reusable with --oes-mask
            result.extras["masks"][i].save(os.path.join(folder, "oes_mask.npz"), overwrite=args.overwrite)
        rows.append(metrics)
        stopped = (f", {run.stop} stop {metrics['psnr_stop']:.2f} dB @ {metrics['iter_stop']}"
                   if "psnr_stop" in metrics else "")
        print(f"{lab}: input {metrics['psnr_input']:.2f} dB, final {metrics['psnr_final']:.2f} dB, "
              f"peak (oracle) {metrics['psnr_peak_oracle']:.2f} dB @ {metrics['iter_peak_oracle']}{stopped} -> {folder}")
    import jax

    print(f"{result.steps} steps in {result.run_seconds:.1f} s (+{result.compile_seconds:.1f} s compile) on "
          f"{jax.default_backend()}; results in {os.path.abspath(args.out)}")
    return rows


def main(argv=None) -> int:
    try:
        args = _build_parser().parse_args(argv)
        if args.command == "tasks":
            from dipjax.tasks import markdown_table

            print(markdown_table())
        elif args.command == "methods":
            from dipjax.methods.registry import markdown_table

            print(markdown_table())
        else:
            if args.command == "demo":
                argv = ["reconstruct", "--task", "denoise", "--image", "camera", "--sigma", "25", "--steps",
                        str(args.steps), "--size", str(args.size), "--width", str(args.width), "--seed",
                        str(args.seed), "--out", args.out] + (["--overwrite"] if args.overwrite else []) + \
                    (["--no-progress"] if args.no_progress else [])
                args = _build_parser().parse_args(argv)
            run_reconstruct(args, argv)
    except UsageError as exc:
        print(f"dipjax: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
