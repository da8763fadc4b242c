"""Measure the engine's execution strategies on this backend: batch (vmap | sequential) x loop (host | scan).

    python experiments/bench_engine.py            # 4 images 64x64 RGB, DIP skip net width 64, 40 timed steps
    python experiments/bench_engine.py --steps 20 --repeats 2   # what made the committed numbers (~10 min on CPU:
                                                                 # the scan rows are slow, which is the finding)
    python experiments/bench_engine.py --quick    # width 16, 20 timed steps (a minute on 2 CPU cores)

Writes experiments/results/bench_engine/{metrics.json, figure.png}: compile seconds and the median seconds per
iteration (for the whole batch) over --repeats timed runs, and each strategy's ratio to sequential+host measured in
the same run. The engine's default per backend (dipjax.engine.default_strategy) should be the fastest row here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import jax
import numpy as np

from dipjax.data import load_image
from dipjax.engine import default_strategy, reconstruct
from dipjax.methods import DIP
from dipjax.networks import skip_net
from dipjax.operators import Denoising, gaussian_noise
from dipjax.problem import make_problem, stack_problems
from dipjax.xla_flags import apply_default_flags

STRATEGIES = [("sequential", "host"), ("vmap", "host"), ("sequential", "scan"), ("vmap", "scan")]
OUT = os.path.join(os.path.dirname(__file__), "results", "bench_engine")


def main(argv=None):
    apply_default_flags()  # dipjax's XLA options, set before JAX starts (dipjax/xla_flags.py)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--width", type=int, default=None)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--chunk", type=int, default=10, help="steps between host syncs (a scan runs this many)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    width = args.width or (16 if args.quick else 64)
    steps = args.steps or (20 if args.quick else 40)

    names = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina", "cat", "colorwheel"]
    if not 1 <= args.images <= len(names):
        ap.error(f"--images must be between 1 and {len(names)}, got {args.images}")
    op = Denoising(in_shape=(args.size, args.size, 3))
    noise = lambda k, y: gaussian_noise(k, y, 25 / 255, (0, 1))  # noqa: E731
    probs = [make_problem(jax.random.key(i), op, load_image(n, args.size, channels=3), noise)
             for i, n in enumerate(names[: args.images])]
    batch = stack_problems(probs)
    method = DIP(network=skip_net(out_channels=3, width=width))
    rows = []
    for b, loop in STRATEGIES:
        r = reconstruct(method, batch, jax.random.key(0), args.chunk, batch=b, loop=loop, sync_every=args.chunk)
        compile_s = r.compile_seconds
        times = []
        for rep in range(args.repeats):
            r = reconstruct(method, batch, jax.random.key(rep), steps, batch=b, loop=loop, sync_every=args.chunk)
            times.append(r.run_seconds / r.steps)
        rows.append({"batch": b, "loop": loop, "compile_seconds": compile_s,
                     "seconds_per_iteration_median": statistics.median(times), "seconds_per_iteration_all": times,
                     "final_psnr_mean": float(np.mean(r.history["psnr"][:, -1]))})
        print(f"{b:10s} {loop:5s} compile {compile_s:6.1f} s   {statistics.median(times) * 1e3:8.1f} ms/iteration "
              f"({args.images} images)", flush=True)
    ref = rows[0]["seconds_per_iteration_median"]
    for row in rows:
        row["ratio_to_sequential_host"] = row["seconds_per_iteration_median"] / ref
    result = {"backend": jax.default_backend(), "device": str(jax.devices()[0]), "jax": jax.__version__,
              "images": args.images, "size": args.size, "width": width, "channels": 3, "steps_timed": steps,
              "repeats": args.repeats, "chunk": args.chunk, "default_strategy": list(default_strategy()),
              "command": " ".join(["python", "experiments/bench_engine.py"] + (argv if argv is not None else sys.argv[1:])),
              "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(result, f, indent=2)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = [f"{r['batch']}\n+{r['loop']}" for r in rows]
    vals = [r["seconds_per_iteration_median"] * 1e3 for r in rows]
    ax.bar(labels, vals, color=["C0", "C1", "C2", "C3"])
    for i, r in enumerate(rows):
        ax.text(i, vals[i], f"{r['ratio_to_sequential_host']:.2f}x", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(f"ms per iteration ({args.images} images)")
    ax.set_title(f"engine strategies on {result['backend']}: {args.images}x{args.size}² RGB, skip net width {width}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "figure.png"), dpi=110)
    print(f"wrote {args.out}/metrics.json and figure.png")


if __name__ == "__main__":
    main()
