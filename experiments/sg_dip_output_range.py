"""Why Self-Guided DIP fails Figure 5's natural rows: its output leaves the image range where the data cannot hold it.

    python experiments/sg_dip_output_range.py                      # nonlinear deblurring and box inpainting (~8 min)
    python experiments/sg_dip_output_range.py --tasks nonlinear_deblur --steps 600
    python experiments/sg_dip_output_range.py --tasks ct --steps 3000 --width 16 \
        --out experiments/results/sg_dip_output_range_ct               # Figure 5's CT row, its CT preset (~3 min)

Self-Guided DIP (``sg_dip``, its default preset: the authors' MRI demo settings, lr_θ 3e-4, lr_z 0.1, λ = 2, ℓ1,
U-Net without an output sigmoid) on 64² RGB ``astronaut`` with width 32, as in ``fig5_natural.py`` (the degradation
here is :class:`dipjax.run.RunConfig`'s, not that script's key). Every ``--every`` steps it records the PSNR of the
reported average (clipped to [0, 1]), the data term, the range of the current mean output x̄ and of the trainable
input z, and the fraction of x̄'s entries outside [0, 1]. The self-guidance term only ties x̄ to z, and both move
(z with Adam at lr 0.1), so where the measurements do not pin a pixel (the inpainting hole; values the saturating
camera response compresses) nothing pulls the output back into the image range.

``--tasks ct`` runs the same trace on 18-view CT of ``ct_head`` (64², grayscale; ``--width 16`` is the U-Net of
``fig5_medical.py``) with the method's CT preset (the DIP-CT handbook's: FBP input, data term over ‖A‖², λ = 0.04
over the J = 4 realizations, clipped gradients); every trace also records the PSNR of the input z and of x̄ (clipped
to [0, 1]).

Writes ``experiments/results/sg_dip_output_range/metrics.json`` (``--out``; results already there are replaced only
with ``--overwrite``).
"""

from __future__ import annotations

import argparse
import os
import sys

OUT = os.path.join(os.path.dirname(__file__), "results", "sg_dip_output_range")
#: task -> (task options, image, channels)
TASKS = {"nonlinear_deblur": ({}, "astronaut", 3), "inpaint": ({"mask": "box", "hole_ratio": 0.25}, "astronaut", 3),
         "ct": ({}, "ct_head", 1)}


def trace(task: str, steps: int, every: int, size: int, width: int, seed: int) -> list[dict]:
    import jax
    import numpy as np

    from dipjax.metrics import psnr
    from dipjax.run import RunConfig
    from dipjax.tasks import task_config

    options, image, channels = TASKS[task]
    run = RunConfig(task=task_config(task, **options), method="sg_dip", images=(image,), size=size, width=width,
                    channels=channels, seed=seed)
    images, _ = run.load_images()
    problem = run.simulate(images)[0]
    method = run.build_method(images[0].shape)
    state = method.init(jax.random.key(seed), problem)
    step = jax.jit(method.step)
    truth = np.asarray(problem.x_true)

    def clipped_psnr(x):
        return float(psnr(np.clip(x, 0, 1), truth))

    rows, key = [], jax.random.key(seed + 1)
    for i in range(1, steps + 1):
        key, k = jax.random.split(key)
        state, info = step(state, problem, k)
        if i % every == 0:
            x_bar, z = np.asarray(state.out), np.asarray(state.z)
            rows.append({"step": i, "psnr": clipped_psnr(np.asarray(state.out_avg)),
                         "psnr_x_bar": clipped_psnr(x_bar), "psnr_z": clipped_psnr(z),
                         "data_loss": float(info["data_loss"]), "x_bar_min": float(x_bar.min()),
                         "x_bar_max": float(x_bar.max()), "z_min": float(z.min()), "z_max": float(z.max()),
                         "x_bar_outside_0_1": float(np.mean((x_bar < 0) | (x_bar > 1)))})
            r = rows[-1]
            print(f"{task} {i:5d}: PSNR {r['psnr']:6.2f} dB (x̄ {r['psnr_x_bar']:.2f}, z {r['psnr_z']:.2f}), "
                  f"data {r['data_loss']:.4f}, x̄ in "
                  f"[{r['x_bar_min']:.2f}, {r['x_bar_max']:.2f}] ({100 * r['x_bar_outside_0_1']:.1f} % outside "
                  f"[0, 1]), z in [{r['z_min']:.2f}, {r['z_max']:.2f}]", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    args = ap.parse_args(argv)
    if not args.overwrite and os.path.exists(os.path.join(args.out, "metrics.json")):
        ap.error(f"{args.out} already holds results; pass --overwrite to replace them")
    from dipjax.xla_flags import apply_default_flags

    apply_default_flags()  # before the first JAX operation
    results = {t: trace(t, args.steps, args.every, args.size, args.width, args.seed) for t in args.tasks}
    from dipjax.report import write_json

    os.makedirs(args.out, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k != "overwrite"}
    write_json(os.path.join(args.out, "metrics.json"), {"config": config, "method": "sg_dip (the task's preset)",
                                                        "traces": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
