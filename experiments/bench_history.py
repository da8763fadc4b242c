"""Does a long run slow down? Time per step in the first and the last 1000 steps of a 20,000-step run.

    python experiments/bench_history.py              # DIP, 16² gray, skip net width 4, 3 scales, 20,000 steps
    python experiments/bench_history.py --steps 4000 # shorter

The engine writes every metric into a preallocated device buffer of ``sync_every`` entries and copies it to a
preallocated host array at each sync, so the cost of a step must not grow with the iteration count. The run's
``sync_times`` (iteration, seconds since the run started, taken at each sync, where the host waits for the device)
give the wall time of any stretch of steps; compilation is excluded. Writes
experiments/results/bench_history/metrics.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import numpy as np

from dipjax.data import load_image
from dipjax.engine import reconstruct
from dipjax.methods import DIP
from dipjax.networks import skip_net
from dipjax.tasks import degradation_key, task_config
from dipjax.xla_flags import apply_default_flags

OUT = os.path.join(os.path.dirname(__file__), "results", "bench_history")


def stretch_seconds(sync_times: np.ndarray, start: int, stop: int) -> float:
    """Wall time of iterations ``start + 1 … stop`` from the sync timestamps (both ends must be sync points;
    iteration 0 is the start of the run)."""
    at = dict(zip(sync_times[:, 0].astype(int), sync_times[:, 1]))
    at[0] = 0.0
    return at[stop] - at[start]


def main(argv=None):
    apply_default_flags()  # dipjax's XLA options, set before JAX starts (dipjax/xla_flags.py)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--window", type=int, default=1000, help="steps compared at the start and at the end")
    ap.add_argument("--sync-every", type=int, default=100)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    if args.steps < 2 * args.window or args.window % args.sync_every or args.steps % args.sync_every:
        ap.error("need steps >= 2·window, with window and steps multiples of --sync-every")
    x = load_image("camera", 16, 1)
    problem = task_config("denoise").simulate(degradation_key(0, "camera"), x)
    method = DIP(network=skip_net(out_channels=1, width=4, scales=3))
    r = reconstruct(method, problem, jax.random.key(0), args.steps, sync_every=args.sync_every)
    first = stretch_seconds(r.sync_times, 0, args.window) / args.window
    last = stretch_seconds(r.sync_times, args.steps - args.window, args.steps) / args.window
    record = {"steps": args.steps, "window": args.window, "sync_every": args.sync_every,
              "ms_per_step_first": 1e3 * first, "ms_per_step_last": 1e3 * last, "ratio_last_to_first": last / first,
              "run_seconds": r.run_seconds, "compile_seconds": r.compile_seconds, "backend": jax.default_backend(),
              "history_lengths": {k: int(v.shape[-1]) for k, v in r.history.items()},
              "command": "python experiments/bench_history.py " + " ".join(argv or sys.argv[1:])}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(record, f, indent=1)
    print(f"{args.steps} steps: {record['ms_per_step_first']:.3f} ms/step in the first {args.window}, "
          f"{record['ms_per_step_last']:.3f} in the last {args.window} (ratio {record['ratio_last_to_first']:.3f}); "
          f"compile {r.compile_seconds:.1f} s")


if __name__ == "__main__":
    main()
