"""The ``dipjax`` command: ``dipjax reconstruct ...`` and ``dipjax demo``.

Bad input (missing or unreadable image, unknown task/method/image, a size the network cannot take, negative σ,
steps ≤ 0, an existing non-empty ``--out`` without ``--overwrite``) ends with exit status 2 and one line on stderr
naming the problem; everything is checked before anything is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from dipjax.data import BUNDLED
from dipjax.tasks import NOISE_CHANNELS, TASKS

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


def _build_parser():
    from dipjax.methods.oes import PRUNE_SCOPES
    from dipjax.methods.presets import METHOD_NAMES, PUBLISHED_STEPS

    p = _Parser(prog="dipjax", description="Deep Image Prior reconstructions in JAX.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("reconstruct", help="reconstruct one or more images (several --image run as one batch)")
    r.add_argument("--task", required=True, choices=TASKS)
    r.add_argument("--image", action="append", required=True,
                   help=f"bundled name ({', '.join(sorted(BUNDLED))}) or a PNG/JPEG/TIFF/NPY path; repeat for a batch")
    r.add_argument("--method", default="dip", choices=list(METHOD_NAMES),
                   help="; ".join(f"{k}: {v}" for k, v in METHOD_NAMES.items()))
    r.add_argument("--sigma", type=float, default=25.0, help="Gaussian noise std on the 0-255 scale (default 25)")
    r.add_argument("--noise-channels", choices=NOISE_CHANNELS, default="independent",
                   help="draw the noise per channel (default) or once per pixel for all channels (Deep Decoder's "
                        "σ = 25 protocol)")
    r.add_argument("--steps", type=_positive_int, default=None,
                   help="network updates (default: the method's published count: "
                        + ", ".join(f"{k} {v[1] if isinstance(v, tuple) else v}" for k, v in PUBLISHED_STEPS.items())
                        + ")")
    r.add_argument("--size", type=_positive_int, default=256, help="centre-crop and resize to SIZE x SIZE")
    r.add_argument("--width", type=_positive_int, default=None,
                   help="network width (method default: skip nets 128, U-Nets 64, Deep Decoder k 128, ...)")
    r.add_argument("--scales", type=_positive_int, default=None,
                   help="network levels / upsamplings / layers (method default)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", required=True, help="output folder (one sub-folder per image)")
    r.add_argument("--overwrite", action="store_true", help="allow writing into an existing non-empty --out")
    color = r.add_mutually_exclusive_group()
    color.add_argument("--gray", action="store_true", help="convert images to grayscale")
    color.add_argument("--rgb", action="store_true", help="convert images to RGB")
    r.add_argument("--lr", type=float, default=None, help="learning rate (method default)")
    r.add_argument("--input-noise", type=float, default=None, help="input perturbation std σ_p (task default)")
    r.add_argument("--ema", type=float, default=None,
                   help="exponential average of outputs, e.g. 0.99 (method default; DIP: off)")
    r.add_argument("--stop", choices=["wmv", "emv"], default=None,
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
    o = r.add_argument_group("Optimal Eye Surgeon")
    o.add_argument("--oes-mask-steps", type=_positive_int, default=None,
                   help=f"mask-learning steps before sparse training (default {PUBLISHED_STEPS['oes'][0]})")
    o.add_argument("--oes-sparsity", type=float, default=0.05, help="kept fraction of parameters (default 0.05)")
    o.add_argument("--oes-prune", choices=PRUNE_SCOPES, default="all",
                   help="what the mask covers: every parameter (the authors, default) or conv kernels only")
    o.add_argument("--oes-mask", default=None,
                   help="an .npz mask saved by an earlier run: skip mask learning and transfer it (fresh weights)")
    g = r.add_argument_group("task options")
    g.add_argument("--mask", choices=("random", "box", "text"), default="random")
    g.add_argument("--keep", type=float, default=0.5, help="inpainting: fraction of observed pixels")
    g.add_argument("--factor", type=int, choices=(2, 4, 8), default=4, help="super-resolution factor")
    g.add_argument("--kernel", choices=("gaussian", "uniform", "motion"), default="gaussian")
    g.add_argument("--kernel-size", type=_positive_int, default=9)
    g.add_argument("--blur-std", type=float, default=1.6)
    g.add_argument("--boundary", choices=("circular", "valid"), default="circular")
    g.add_argument("--ratio", type=float, default=0.25, help="compressed sensing: measurements per unknown")

    d = sub.add_parser("demo", help="denoise a bundled image (camera, σ = 25) and write the results")
    d.add_argument("--out", default=DEMO_OUT)
    d.add_argument("--overwrite", action="store_true")
    d.add_argument("--steps", type=_positive_int, default=1200)
    d.add_argument("--size", type=_positive_int, default=128)
    d.add_argument("--width", type=_positive_int, default=32)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-progress", action="store_true")
    return p


def _check_out(out: str, overwrite: bool) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out!r} exists and is not a folder")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise UsageError(f"output folder {out!r} exists and is not empty; pass --overwrite or choose another --out")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UsageError(f"cannot create --out {out!r}: folder {parent!r} does not exist")


def run_reconstruct(args) -> list[dict]:
    """Validate everything, then reconstruct and write one sub-folder per image. Returns the metrics."""
    import numpy as np

    from dipjax.data import ImageError, image_label, load_image
    from dipjax.tasks import TaskConfig, degradation_key, simulate

    if args.sigma < 0:
        raise UsageError(f"--sigma must be non-negative, got {args.sigma}")
    if args.lr is not None and args.lr <= 0:
        raise UsageError(f"--lr must be positive, got {args.lr}")
    if args.input_noise is not None and args.input_noise < 0:
        raise UsageError(f"--input-noise must be non-negative, got {args.input_noise}")
    if args.ema is not None and not 0 <= args.ema < 1:
        raise UsageError(f"--ema must be in [0, 1), got {args.ema}")
    if not 0 < args.oes_sparsity < 1:
        raise UsageError(f"--oes-sparsity must be in (0, 1), got {args.oes_sparsity}")
    if args.task == "inpaint" and not 0 < args.keep <= 1:
        raise UsageError(f"--keep must be in (0, 1], got {args.keep}")
    if args.task == "cs" and not 0 < args.ratio <= 1:
        raise UsageError(f"--ratio must be in (0, 1], got {args.ratio}")
    if args.task == "deblur" and (args.blur_std <= 0 or args.kernel_size > args.size):
        raise UsageError("--blur-std must be positive and --kernel-size no larger than --size")
    _check_out(args.out, args.overwrite)
    channels = 1 if args.gray else 3 if args.rgb else None
    images, labels = [], []
    try:
        for spec in args.image:
            images.append(load_image(spec, args.size, channels))
            label = image_label(spec)
            labels.append(label if label not in labels else f"{label}-{len(labels)}")
    except ImageError as exc:
        raise UsageError(str(exc).splitlines()[0]) from None
    if len({im.shape[-1] for im in images}) > 1:  # mixed gray and colour: promote to RGB
        images = [np.repeat(im, 3, -1) if im.shape[-1] == 1 else im for im in images]
    c = images[0].shape[-1]
    mask = None
    if args.oes_mask is not None:
        from dipjax.methods import OESMask

        if args.method != "oes":
            raise UsageError("--oes-mask needs --method oes")
        try:
            mask = OESMask.load(args.oes_mask)
        except (ValueError, FileNotFoundError) as exc:
            raise UsageError(str(exc).splitlines()[0]) from None
    method = _build_method(args, c)
    try:
        config = TaskConfig(task=args.task, sigma=args.sigma, noise_channels=args.noise_channels, mask=args.mask,
                            keep=args.keep, factor=args.factor, kernel=args.kernel, kernel_size=args.kernel_size,
                            blur_std=args.blur_std, boundary=args.boundary, ratio=args.ratio)
        # The operators validate their own configuration (SR factor vs size, CS matrix size, kernel vs image).
        problems = [simulate(config, degradation_key(args.seed, lab), im) for im, lab in zip(images, labels)]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.steps is None:
        from dipjax.methods.presets import PUBLISHED_STEPS

        steps = PUBLISHED_STEPS[args.method]
        args.steps = steps[1] if isinstance(steps, tuple) else steps
    if args.method == "oes" and args.oes_mask_steps is None:
        from dipjax.methods.presets import PUBLISHED_STEPS

        args.oes_mask_steps = PUBLISHED_STEPS["oes"][0]
    return _reconstruct_and_write(args, problems, labels, method, mask)


def _build_method(args, channels):
    """The ``--method`` with its published defaults for ``--task``, resized by ``--width``/``--scales`` and with the
    user's ``--lr``/``--input-noise``/``--ema`` where the method has such a field."""
    import dataclasses

    from dipjax.methods.presets import build_method

    overrides = {}
    try:
        method = build_method(args.method, args.task, channels, args.size, width=args.width, scales=args.scales)
    except ValueError as exc:
        raise UsageError(f"--size {args.size} does not fit the {args.method} network: {exc}") from None
    fields = {f.name for f in dataclasses.fields(method)}
    if args.lr is not None:
        overrides["lr_theta" if "lr_theta" in fields else "lr"] = args.lr
    if args.ema is not None:
        if "output_ema" not in fields:
            raise UsageError(f"--ema does not apply to {args.method}, which has no output average")
        overrides["output_ema"] = args.ema
    if args.method == "oes":
        overrides["sparsity"] = args.oes_sparsity
        overrides["prune"] = args.oes_prune
    if args.input_noise is not None:
        if "input_noise_std" not in fields:
            raise UsageError(f"--input-noise does not apply to {args.method}, which does not perturb its input")
        overrides["input_noise_std"] = args.input_noise
    try:
        return dataclasses.replace(method, **overrides)  # __post_init__ validates the user's values
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _run_oes(args, problem, labels, stage1, mask):
    """Optimal Eye Surgeon per image: learn a mask (or use ``mask``), save it, then train the sparse network."""
    import jax

    from dipjax.engine import reconstruct
    from dipjax.methods import OES, learned_mask

    results = []
    problems = [problem] if problem.batch_size is None else [problem[i] for i in range(problem.batch_size)]
    key = jax.random.key(args.seed)
    for lab, p in zip(labels, problems):
        if mask is None:
            r1 = reconstruct(stage1, p, key, args.oes_mask_steps, progress=not args.no_progress,
                             desc=f"oes mask {lab}", track_ssim=not args.no_ssim)
            m = learned_mask(r1.state, stage1.sparsity, jax.random.fold_in(key, 1), stage1.prune)
            os.makedirs(os.path.join(args.out, lab), exist_ok=True)
            m.save(os.path.join(args.out, lab, "oes_mask.npz"), overwrite=args.overwrite)
            method = OES(network=stage1.network, mask=m)
        else:
            method = OES(network=stage1.network, mask=mask, transfer=True)
        results.append(reconstruct(method, p, key, args.steps, progress=not args.no_progress, desc=f"oes {lab}",
                                   track_ssim=not args.no_ssim))
    return results


def _reconstruct_and_write(args, problems, labels, method, mask) -> list[dict]:
    import jax
    import numpy as np

    from dipjax.data import save_png
    from dipjax.engine import reconstruct
    from dipjax.metrics import psnr, ssim
    from dipjax.plotting import plot_curve
    from dipjax.problem import stack_problems
    from dipjax.stopping import ExponentialMovingVariance, WindowedMovingVariance
    from dipjax.tasks import degraded_image

    problem = problems[0] if len(problems) == 1 else stack_problems(problems)
    stopper = None
    if args.stop == "wmv":
        stopper = WindowedMovingVariance(window=args.stop_window, patience=args.stop_patience)
    elif args.stop == "emv":
        stopper = ExponentialMovingVariance(patience=args.stop_patience)
    if args.method == "oes":
        if stopper is not None:
            raise UsageError("--stop does not apply to oes, which trains a sparse network without early stopping")
        results = _run_oes(args, problem, labels, method, mask)
    else:
        result = reconstruct(method, problem, jax.random.key(args.seed), args.steps, batch=args.batch,
                             loop=args.loop, independent_keys=args.independent_keys, progress=not args.no_progress,
                             stopper=stopper, stop_early=args.stop_early, track_ssim=not args.no_ssim)
        results = [result] * len(problems)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for i, (lab, p) in enumerate(zip(labels, problems)):
        result = results[i]
        batched_result = len(problems) > 1 and args.method != "oes"
        pick = (lambda a: a[i]) if batched_result else (lambda a: a)
        x_hat, hist = pick(result.x_final), {k: pick(v) for k, v in result.history.items()}
        degraded = np.asarray(degraded_image(p))
        folder = os.path.join(args.out, lab)
        os.makedirs(folder, exist_ok=True)
        save_png(os.path.join(folder, "estimate.png"), x_hat)
        save_png(os.path.join(folder, "degraded.png"), degraded)
        metrics = {
            "image": args.image[i], "task": args.task, "method": args.method, "seed": args.seed,
            "sigma": args.sigma, "noise_channels": args.noise_channels, "size": args.size,
            "channels": int(x_hat.shape[-1]), "width": args.width,
            "scales": args.scales, "config": _describe(method),
            **({"oes_mask_steps": args.oes_mask_steps if mask is None else None,
                "oes_mask": args.oes_mask} if args.method == "oes" else {}),
            "steps": result.steps, "batch_size": len(problems),
            "psnr_input": float(psnr(degraded, p.x_true)),
            "psnr_final": float(psnr(x_hat, p.x_true)), "ssim_final": float(ssim(x_hat, p.x_true)),
            "psnr_peak_oracle": float(pick(result.psnr_peak_oracle)),
            "iter_peak_oracle": int(pick(result.iter_peak_oracle)),
            "seconds": result.run_seconds, "compile_seconds": result.compile_seconds,
            "init_seconds": result.init_seconds, "seconds_per_step": result.seconds_per_step,
            "strategy": list(result.strategy), "backend": jax.default_backend(),
        }
        if stopper is not None:
            x_stop = pick(result.x_stop)
            save_png(os.path.join(folder, "stopped.png"), x_stop)
            metrics.update({"stop": args.stop, "stop_window": args.stop_window, "stop_patience": args.stop_patience,
                            "iter_stop": int(pick(result.iter_stop)), "psnr_stop": float(psnr(x_stop, p.x_true)),
                            "ssim_stop": float(ssim(x_stop, p.x_true))})
            metrics["detection_gap"] = metrics["psnr_peak_oracle"] - metrics["psnr_stop"]
        with open(os.path.join(folder, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
        with open(os.path.join(folder, "history.json"), "w") as f:  # the numbers behind curve.png, one per step
            json.dump({k: np.asarray(v, np.float64).round(6).tolist() for k, v in hist.items()}, f)
        plot_curve(os.path.join(folder, "curve.png"), hist,
                   title=f"{args.method} · {args.task} · {lab} ({args.size}², σ={args.sigma:g})",
                   psnr_input=metrics["psnr_input"], iter_stop=metrics.get("iter_stop"))
        rows.append(metrics)
        stopped = (f", {args.stop} stop {metrics['psnr_stop']:.2f} dB @ {metrics['iter_stop']}"
                   if stopper is not None else "")
        print(f"{lab}: input {metrics['psnr_input']:.2f} dB, final {metrics['psnr_final']:.2f} dB, "
              f"peak (oracle) {metrics['psnr_peak_oracle']:.2f} dB @ {metrics['iter_peak_oracle']}{stopped} -> {folder}")
    print(f"{result.steps} steps in {result.run_seconds:.1f} s (+{result.compile_seconds:.1f} s compile) on "
          f"{jax.default_backend()}; results in {os.path.abspath(args.out)}")
    return rows


def _describe(method) -> dict:
    """The method's scalar hyper-parameters, for metrics.json."""
    import dataclasses

    return {f.name: getattr(method, f.name) for f in dataclasses.fields(method)
            if isinstance(getattr(method, f.name), (int, float, str, bool))}


def main(argv=None) -> int:
    try:
        args = _build_parser().parse_args(argv)
        if args.command == "demo":
            args = _build_parser().parse_args(
                ["reconstruct", "--task", "denoise", "--image", "camera", "--sigma", "25", "--steps", str(args.steps),
                 "--size", str(args.size), "--width", str(args.width), "--seed", str(args.seed), "--out", args.out]
                + (["--overwrite"] if args.overwrite else []) + (["--no-progress"] if args.no_progress else []))
        run_reconstruct(args)
    except UsageError as exc:
        print(f"dipjax: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
