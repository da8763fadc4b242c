"""Survey Figure 5, medical rows: 4× multi-coil MRI and 18-view CT — ground truth, the degraded input (zero-filled /
FBP), a classical baseline, vanilla DIP with ES-WMV, Self-Guided DIP and aSeqDIP, PSNR under each image and the
absolute error of a centre box.

    python experiments/fig5_medical.py            # 64², width 32, 3000 updates per method (2 CPU cores: README)
    python experiments/fig5_medical.py --quick    # width 16, 300 updates each (minutes; too few to converge)
    python experiments/fig5_medical.py --size 320 --ct-size 256 --coils 15 --maps espirit --width 64 --steps 0
                                                  # the published size and budgets (a GPU run)

Data (simulated; the survey's fastMRI knee and AAPM CT scans are not bundled): MRI from pydicom's abdominal MR slice
(``mr_abdomen``) with a smooth random phase, ``--coils`` (8) birdcage coils, k-space on a 2× finer grid, fastMRI's
random 4× mask with 8 % centre columns (12.5 % at 64²), complex noise σ = 5/255, coil maps known to the
reconstruction (``--maps birdcage``; ESPIRiT calibrated on the 8–10 centre columns of a 64–128² image leaves a model
error that least squares amplify: ``--maps espirit`` for the published size); CT from pydicom's head CT slice
(``ct_head``, HU clipped below at air's −1000, then min–max normalised to [0, 1]) at 0.02 attenuation per pixel,
18 equispaced views, sinogram on a 2× finer grid, noiseless post-log (the survey's setting). PSNR of magnitudes
inside the coil maps' support (MRI) / of the image (CT), data range 1.

Methods, each with its authors' preset for the task (``dipjax methods``) on networks resized by ``--width``, each
for the same ``--steps`` (3000) network updates; ``--steps 0`` runs each method's published budget (DIP 5000 /
3000, Self-Guided DIP 4000 / 10,000, aSeqDIP 60,000 / 20,000 on MRI / CT), about 45 min at 64² on 2 CPU cores by
the per-update costs the default run records:

* the classical baseline in place of the diffusion-model column (its weights cannot ship): TV by PDHG (500
  iterations) with λ picked by PSNR against the truth from a ×√10 grid (an oracle choice, which favours the baseline;
  MRI also reports CG-SENSE);
* DIP (skip net 5 × width) with ES-WMV (W = 100, P = 1000): the image at the stop is shown (``--stop-methods``
  puts other methods under the same rule, e.g. ``--methods aseq_dip --stop-methods aseq_dip``);
* Self-Guided DIP and aSeqDIP on their presets' U-Nets (SG-DIP MRI: 5 poolings, CT: 2; aSeqDIP: MediumUNet, 3
  poolings) with first width w/2, their final iterates (the methods are designed not to need stopping); their
  oracle peaks are recorded too.

Writes experiments/results/fig5_medical[_quick]/{figure.png, metrics.json} with every number shown and the issue's
check: Self-Guided DIP and aSeqDIP beat the zero-filled / FBP input by ≥ 3 dB.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from dipjax.baselines import least_squares_cg, tv_reconstruction
from dipjax.data import load_image
from dipjax.engine import reconstruct
from dipjax.methods import build_method, default_steps
from dipjax.metrics import psnr
from dipjax.monitors import quality_image, truth_image
from dipjax.stopping import WindowedMovingVariance
from dipjax.tasks import degradation_key, task_config
from dipjax.xla_flags import apply_default_flags
from medical_figure import add_common_arguments, mri_task, output_paths, resolve_defaults, write_results
TV_SMALLEST, TV_RATIO = 1e-4, 10 ** 0.5
DIP_METHODS = ("dip", "sg_dip", "aseq_dip")
LABELS = {"truth": "ground truth", "input": "input", "tv": "TV (oracle λ)", "dip": "DIP + ES-WMV",
          "sg_dip": "Self-Guided DIP", "aseq_dip": "aSeqDIP"}


def rows(args):
    """(name, task configuration, image, input label)."""
    return [("mri", mri_task(args, args.size), load_image(args.mri_image, args.size, 1), "zero-filled"),
            ("ct", task_config("ct"), load_image(args.ct_image, args.ct_size, 1), "FBP")]


def network_size(name, width):
    """DIP's skip net at ``width``; the U-Nets (first width halved, depth from the preset) at ``width // 2``."""
    return {"width": width} if name == "dip" else {"width": max(width // 2, 1)}


def tv_oracle(op, y, view, truth, nonnegative=False, x0=None):
    """TV with the λ that scores best on a ×√10 grid from 1e-4, extended upwards while the best λ is the largest
    tried (so the choice is never at the grid's edge): ``(best image, PSNR, {tv_<λ>: PSNR, tv_lambda: λ})``."""
    records, best, k = {}, None, 0
    while best is None or best[3] == k - 1:  # the best is the last λ tried: try a larger one
        lam = TV_SMALLEST * TV_RATIO**k
        x = tv_reconstruction(op, y, lam, iters=500, nonnegative=nonnegative, x0=x0)
        p = float(psnr(view(x), truth))
        records[f"tv_{lam:.3g}"] = p
        if best is None or p > best[1]:
            best = (view(x), p, lam, k)
        k += 1
    records["tv_lambda"] = best[2]
    return best[0], best[1], records


def classical(problem, name, view, truth):
    """TV with the oracle λ (:func:`tv_oracle`, non-negative for CT) and CG-SENSE for MRI."""
    image, value, records = tv_oracle(problem.operator, problem.y, view, truth, nonnegative=name == "ct",
                                      x0=problem.operator.init_image(problem.y))
    if name == "mri":
        records["cg_sense_20"] = float(psnr(view(least_squares_cg(problem.operator, problem.y, iters=20)), truth))
    return image, value, records


def run_row(name, config, image, args):
    problem = config.simulate(degradation_key(args.seed, name), image)
    shape = tuple(problem.x_true.shape)
    truth = np.asarray(truth_image(problem))
    view = lambda x: np.asarray(quality_image(jnp.asarray(x), problem))  # noqa: E731
    degraded = view(problem.operator.init_image(problem.y))
    images = {"truth": truth, "input": degraded}
    record = {"shape": list(shape), "task": config.options(), "psnr": {"input": float(psnr(degraded, truth))},
              "methods": {}}
    t0 = time.perf_counter()
    images["tv"], record["psnr"]["tv"], record["classical"] = classical(problem, name, view, truth)
    print(f"{name}: input {record['psnr']['input']:.2f} dB, TV {record['psnr']['tv']:.2f} dB "
          f"(λ = {record['classical']['tv_lambda']:g}, {time.perf_counter() - t0:.0f} s)", flush=True)
    run_methods(problem, config, name, args, view, truth, images, record, args.stop_methods)
    return record, images


def run_methods(problem, config, name, args, view, truth, images, record, stop_methods=("dip",)):
    """Each of ``args.methods`` on ``problem`` for ``args.steps`` updates (0: its published budget), those in
    ``stop_methods`` with ES-WMV (the stopped image is shown); adds the shown images to ``images`` and their numbers
    to ``record``; returns the engine's results by method."""
    key, results = jax.random.key(args.seed), {}
    for m in args.methods:
        steps = args.steps or default_steps(m, config)
        method = build_method(m, config, tuple(problem.x_true.shape), **network_size(m, args.width))
        stopper = WindowedMovingVariance(window=100, patience=1000) if m in stop_methods else None
        t0 = time.perf_counter()
        r = reconstruct(method, problem, key, steps, stopper=stopper, track_ssim=False)
        wall = time.perf_counter() - t0
        x = r.x_stop if stopper else r.x_final
        images[m] = view(x)
        record["psnr"][m] = float(psnr(images[m], truth))
        record["methods"][m] = {"steps": steps, "psnr_shown": record["psnr"][m], "psnr_final": float(r.history["psnr"][-1]),
                                "psnr_peak_oracle": float(r.psnr_peak_oracle), "iter_peak_oracle": int(r.iter_peak_oracle),
                                "seconds_per_step": r.seconds_per_step, "wall_seconds": wall,
                                "network": network_size(m, args.width), "curve": np.asarray(r.history["psnr"])}
        if stopper:
            record["methods"][m]["iter_stop"] = int(r.iter_stop)
        print(f"{name} {m}: {record['psnr'][m]:.2f} dB shown, peak {r.psnr_peak_oracle:.2f} dB @ {r.iter_peak_oracle}, "
              f"{steps} steps in {wall:.0f} s", flush=True)
        results[m] = r
    return results


def checks(name, record):
    out = {}
    for m in ("sg_dip", "aseq_dip"):
        if m in record["psnr"]:
            v = record["psnr"][m] - record["psnr"]["input"]
            out[m] = {"rule": "final >= input + 3 dB", "value": v, "passed": bool(v >= 3.0)}
            print(f"check {name} {m}: {out[m]['rule']}: {v:.2f} dB -> {'PASS' if v >= 3 else 'FAIL'}")
    return out


def centre_box(img, fraction=0.4):
    h, w = img.shape[:2]
    bh, bw = int(h * fraction), int(w * fraction)
    return img[(h - bh) // 2:(h - bh) // 2 + bh, (w - bw) // 2:(w - bw) // 2 + bw]


def plot(results, input_labels, path, labels=LABELS):
    """One row of images per task (gray or RGB, PSNR under each) and below it the absolute error of a centre box
    (mean over channels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def show(ax, img):
        img = np.clip(img, 0, 1)
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)

    ncols = max(len(images) for _, images in results.values())
    fig, axes = plt.subplots(2 * len(results), ncols, figsize=(2.9 * ncols, 6.0 * len(results)), squeeze=False)
    for r, (name, (record, images)) in enumerate(results.items()):
        truth = images["truth"]
        for c, (key, img) in enumerate(images.items()):
            ax, ex = axes[2 * r, c], axes[2 * r + 1, c]
            show(ax, img)
            label = input_labels[name] if key == "input" else labels[key]
            sub = "" if key == "truth" else f"\n{record['psnr'][key]:.2f} dB"
            ax.set_title(f"{name.upper()}: {label}{sub}" if key == "truth" else f"{label}{sub}", fontsize=9)
            if key == "truth":
                show(ex, centre_box(truth))
            else:
                ex.imshow(np.abs(centre_box(img) - centre_box(truth)).mean(-1), cmap="inferno", vmin=0, vmax=0.2)
            ex.set_title("|error|, centre box" if key != "truth" else "centre box", fontsize=8)
            for a in (ax, ex):
                a.axis("off")
        for c in range(len(images), ncols):
            axes[2 * r, c].axis("off")
            axes[2 * r + 1, c].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    apply_default_flags()  # dipjax's XLA options, set before JAX starts (dipjax/xla_flags.py)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=None, help="MRI image side (64)")
    ap.add_argument("--ct-size", type=int, default=None, help="CT image side (64)")
    ap.add_argument("--width", type=int, default=None, help="network width (32; 16 with --quick)")
    ap.add_argument("--steps", type=int, default=None,
                    help="network updates per method (3000; 300 with --quick; 0: each method's published budget)")
    ap.add_argument("--ct-image", default="ct_head", help="CT image: bundled name or file (ct_head)")
    ap.add_argument("--methods", default=",".join(DIP_METHODS))
    ap.add_argument("--stop-methods", default="dip",
                    help="methods watched by ES-WMV, whose stopped image is shown (dip; e.g. dip,aseq_dip)")
    add_common_arguments(ap, "fig5_medical")
    args = ap.parse_args(argv)
    resolve_defaults(args, (("size", 64, 64), ("ct_size", 64, 64), ("width", 32, 16), ("steps", 3000, 300)))
    args.methods = tuple(m.strip() for m in args.methods.split(","))
    args.stop_methods = tuple(m.strip() for m in args.stop_methods.split(",") if m.strip())
    if any(m not in DIP_METHODS for m in args.methods + args.stop_methods):
        ap.error(f"--methods and --stop-methods must be some of {', '.join(DIP_METHODS)}")
    png, js = output_paths(ap, args, "fig5_medical")
    labels = {**LABELS, **{m: f"{LABELS[m]} + ES-WMV" for m in args.stop_methods if m != "dip"}}
    results, all_checks, input_labels = {}, {}, {}
    for name, config, image, input_label in rows(args):
        results[name] = run_row(name, config, image, args)
        all_checks[name] = checks(name, results[name][0])
        input_labels[name] = input_label
        # Written after every row, so an interrupted run keeps the rows it finished.
        plot(results, input_labels, png, labels)
        write_results(js, args, {k: r for k, (r, _) in results.items()}, all_checks)
    print(f"wrote {png} and {js}")


if __name__ == "__main__":
    main()
