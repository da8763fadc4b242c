"""Why aSeqDIP's MRI curve falls in Figure 5's medical rows: its data-consistent input update is a Landweber step.

With coil maps whose root-sum-of-squares is 1 (``SᴴS = I``; the birdcage maps, and ESPIRiT's inside the object),
the unitary centred FFT ``F`` and a 0/1 mask ``M``, aSeqDIP's MRI input update (METHODS.md §2, ``Aseq_DIP_MRI.py``)

    z_k = Sᴴ F⁻¹[(1 − M) F S f(z_{k−1}) + M y]  =  f(z_{k−1}) + Aᴴ(y − A f(z_{k−1}))

is one Landweber step (step size 1 = 1/‖A‖²) from the network's output. Its autoencoding term ``λ‖f(z) − z‖`` pulls
the network towards the identity; with ``f`` = identity the K stages *are* Landweber's iteration for
``min ‖Az − y‖²`` from ``z₀ = Aᴴy``, which on noisy data first improves on the zero-filled image and then converges
towards the least-squares solution, amplifying the noise along A's small singular values (semi-convergence).

This script runs that iteration (no network) for aSeqDIP's K = 6000 stages on the data of ``fig5_medical.py``'s MRI
row — and on the same simulation without noise, then also without the finer simulation grid and (with ``--maps
espirit``) with the simulating coil maps, so that the last has no model error — and overlays
aSeqDIP's measured curve from a committed ``fig5_medical.py`` run at update N·k (N = 10 updates per stage):

    python experiments/aseq_dip_landweber.py          # 64², 8 birdcage coils: the committed run's data (seconds)
    python experiments/aseq_dip_landweber.py --size 320 --coils 15 --maps espirit --out OUT \\
        --aseq-metrics experiments/results/fig5_medical_published_gpu/metrics.json
                 # the published size (minutes); that GPU run's aSeqDIP has 300 stages (3000 updates), not 6000

Writes ``experiments/results/aseq_dip_landweber/{figure.png, metrics.json}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from dipjax.data import load_image
from dipjax.metrics import psnr
from dipjax.monitors import quality_image, truth_image
from dipjax.report import write_json
from dipjax.tasks import degradation_key
from dipjax.xla_flags import apply_default_flags
from medical_figure import RESULTS, add_common_arguments, mri_task, output_paths

#: aSeqDIP's MRI preset: 6000 stages of N = 10 network updates (Aseq_DIP_MRI.py; dipjax.methods.aseq_dip.PRESETS)
STAGES, UPDATES_PER_STAGE = 6000, 10
#: (label, changes to the figure's MRI task): noise off, then the finer simulation grid, then (with --maps espirit)
#: the reconstruction's estimated coil maps replaced by the simulating ones; the last variant that differs from the
#: one before has data exactly in the range of A (y = A x): no model error left
VARIANTS = (("figure's data", {}), ("no noise", {"sigma": 0.0}),
            ("no noise, on the reconstruction grid", {"sigma": 0.0, "oversample": 1}),
            ("no noise, on the reconstruction grid, simulating maps", {"sigma": 0.0, "oversample": 1,
                                                                       "maps": "birdcage"}))
REPORT_STAGES = (1, 10, 30, 100, 300, 1000, 3000, 6000)
COMMITTED = os.path.join(RESULTS, "fig5_medical_published_budgets", "metrics.json")


def landweber_curve(problem, stages: int) -> tuple[np.ndarray, float]:
    """PSNR after each of ``stages`` data-consistent updates with the identity network, ``z ← DC(z)`` from
    ``z₀ = Aᴴy``, and the largest entry of ``DC(z₀) − [z₀ + Aᴴ(y − Az₀)]`` (zero up to rounding when SᴴS = I)."""
    op, y, truth = problem.operator, problem.y, truth_image(problem)
    z0 = op.init_image(y)
    gap = float(jnp.max(jnp.abs(op.data_consistent(z0, y) - (z0 + op.adjoint(y - op(z0))))))

    def stage(z, _):
        z = op.data_consistent(z, y)
        return z, psnr(quality_image(z, problem), truth)

    _, curve = jax.jit(lambda z: jax.lax.scan(stage, z, None, length=stages))(z0)
    return np.asarray(curve), gap


def committed_aseq_curve(path: str, args) -> tuple[np.ndarray, float] | None:
    """aSeqDIP's PSNR at the end of each stage (update N·k) in a fig5_medical metrics.json, and the zero-filled PSNR
    that run recorded (main() checks it against this run's, so that the two are on the same data)."""
    if path == "none":
        return None
    with open(path) as f:
        m = json.load(f)
    cfg, row = m["config"], m["rows"]["mri"]
    same = {"size": args.size, "coils": args.coils, "maps": args.maps, "seed": args.seed}
    differ = {k: (cfg.get(k), v) for k, v in same.items() if cfg.get(k) != v}
    if differ:
        raise SystemExit(f"{path} was made on other data ({differ}); pass --aseq-metrics none or a matching run")
    curve = np.asarray(row["methods"]["aseq_dip"]["curve"])
    return curve[UPDATES_PER_STAGE - 1::UPDATES_PER_STAGE], float(row["psnr"]["input"])


def plot(curves, aseq, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for label, rec in curves.items():
        k = np.arange(1, len(rec["curve"]) + 1)
        ax.semilogx(k, rec["curve"], label=f"Landweber (aSeqDIP with f = identity): {label}")
    if aseq is not None:
        ax.semilogx(np.arange(1, len(aseq) + 1), aseq, "k--", lw=1.2, label="aSeqDIP, measured (fig5_medical)")
    first = next(iter(curves.values()))
    ax.axhline(first["psnr_zero_filled"], color="gray", lw=0.8, ls=":", label="zero-filled Aᴴy")
    ax.set_xlabel(f"stage k (aSeqDIP: {UPDATES_PER_STAGE} network updates each)")
    ax.set_ylabel("PSNR (dB)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    apply_default_flags()  # dipjax's XLA options, set before JAX starts (dipjax/xla_flags.py)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64, help="MRI image side (64, as fig5_medical.py)")
    ap.add_argument("--stages", type=int, default=None, help=f"input updates ({STAGES}; 300 with --quick)")
    ap.add_argument("--aseq-metrics", default=COMMITTED,
                    help="fig5_medical metrics.json whose aSeqDIP curve to overlay ('none': no overlay)")
    add_common_arguments(ap, "aseq_dip_landweber")
    args = ap.parse_args(argv)
    args.stages = args.stages or (300 if args.quick else STAGES)
    committed = committed_aseq_curve(args.aseq_metrics, args)
    png, js = output_paths(ap, args, "aseq_dip_landweber")
    image = load_image(args.mri_image, args.size, 1)
    curves = {}
    configs = []
    for label, changes in VARIANTS:
        config = dataclasses.replace(mri_task(args, args.size), **changes)
        if config in configs:  # e.g. the simulating maps when the figure's data use them already
            continue
        configs.append(config)
        problem = config.simulate(degradation_key(args.seed, "mri"), image)
        zf = float(psnr(quality_image(problem.operator.init_image(problem.y), problem), truth_image(problem)))
        if committed is not None and label == VARIANTS[0][0] and abs(zf - committed[1]) > 0.01:
            raise SystemExit(f"{args.aseq_metrics} was made on other data: its zero-filled image scores "
                             f"{committed[1]:.2f} dB, this run's {zf:.2f} dB (--mri-image?)")
        curve, gap = landweber_curve(problem, args.stages)
        curves[label] = {"task": config.options(), "psnr_zero_filled": zf, "dc_minus_landweber_max": gap,
                         "psnr_peak": float(curve.max()), "stage_peak": int(curve.argmax()) + 1,
                         "psnr_final": float(curve[-1]), "curve": curve}
        at = " ".join(f"{k}: {curve[k - 1]:.2f}" for k in REPORT_STAGES if k <= len(curve))
        print(f"{label}: zero-filled {zf:.2f} dB, peak {curve.max():.2f} dB @ stage {curve.argmax() + 1}, "
              f"final {curve[-1]:.2f} dB; DC − Landweber {gap:.1e}; by stage {at}", flush=True)
    record = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "overwrite")}, "landweber": curves,
              "device": str(jax.devices()[0].device_kind)}
    aseq = None if committed is None else committed[0]
    if aseq is not None:
        n = min(len(aseq), args.stages)
        lw = curves[VARIANTS[0][0]]["curve"][:n]
        record["aseq_dip"] = {"source": os.path.relpath(args.aseq_metrics), "curve_per_stage": aseq[:n],
                              "at_stages": {k: [float(aseq[k - 1]), float(lw[k - 1])] for k in REPORT_STAGES if k <= n},
                              "mean_aseq_minus_landweber_from_stage_100": float(np.mean(aseq[99:n] - lw[99:n]))}
        print("aSeqDIP vs Landweber (dB) by stage: " + " ".join(
            f"{k}: {a:.2f}/{b:.2f}" for k, (a, b) in record["aseq_dip"]["at_stages"].items()), flush=True)
    plot(curves, None if aseq is None else aseq[:args.stages], png)
    write_json(js, record)
    print(f"wrote {png} and {js}")


if __name__ == "__main__":
    main()
