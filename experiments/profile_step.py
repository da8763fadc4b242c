"""Where one DIP step's time goes on this machine: JAX's profiler over a few steps of the skip net 5 × width (Adam,
RGB, σ = 25 denoising — the step ``bench_step.py`` times), summed by kind of compiled operation.

    python experiments/profile_step.py                      # 256², width 128, under dipjax's XLA options
    XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= python experiments/profile_step.py --out /tmp/no_ynn

XLA names each operation of the compiled program after what it does (``transpose_copy_fusion.8``,
``wrapped_reduce-window.30``, ``ynn_fusion.12``); dropping the numeric suffix gives its kind. The profiler records
each operation the runtime dispatches, so the large convolutions that XLA hands to its Eigen kernels appear only
partly; ``untraced_ms`` (wall time per step minus the traced operations) is mostly theirs. Writes
``experiments/results/profile_step/metrics.json``: milliseconds per step by kind, the ten most expensive
operations, the XLA options in force.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import statistics
import sys
import tempfile
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_step import dipjax_setup  # noqa: E402

from dipjax.report import write_json  # noqa: E402
from dipjax.xla_flags import apply_default_flags  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results", "profile_step")
#: trace events that wrap the program rather than being one of its operations
WRAPPERS = ("$", "Thunk", "Pjit", "CommonPjRt", "Handle inputs", "while")


def operation_times(trace_dir: str, steps: int) -> collections.Counter:
    """Milliseconds per step of every compiled operation in the Perfetto trace under ``trace_dir``."""
    path = sorted(glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True))[-1]
    with gzip.open(path) as f:
        trace = json.load(f)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    times = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and not e["name"].startswith(WRAPPERS):
            times[e["name"]] += e.get("dur", 0) / 1e3 / steps
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--steps", type=int, default=3, help="profiled steps (after 2 warm-up steps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=OUT)
    args = p.parse_args(argv)
    apply_default_flags()
    problem, method, state, step = dipjax_setup(args.size, args.width, args.seed)
    step = step.lower(state, problem, jax.random.key(0)).compile()
    keys = iter(jax.random.split(jax.random.key(args.seed + 2), 2 * args.steps + 2))

    def one_step():
        nonlocal state
        t0 = time.perf_counter()
        state, info = step(state, problem, next(keys))
        jax.block_until_ready(info["loss"])
        return time.perf_counter() - t0

    for _ in range(2):
        one_step()
    wall = statistics.median(one_step() for _ in range(args.steps))  # unprofiled, for the untraced remainder
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(args.steps):
                one_step()
        ops = operation_times(trace_dir, args.steps)
    kinds = collections.Counter()
    counts = collections.Counter()
    for name, ms in ops.items():
        kind = re.sub(r"\.\d+$", "", name)
        kinds[kind] += ms
        counts[kind] += 1
    traced = sum(ops.values())
    result = {"command": " ".join(["python", "experiments/profile_step.py"] + (argv or sys.argv[1:])),
              "size": args.size, "width": args.width, "steps": args.steps, "cpu_count": os.cpu_count(),
              "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
              "step_ms": 1e3 * wall, "traced_ms": traced, "untraced_ms": 1e3 * wall - traced,
              "by_kind": [{"kind": k, "ms_per_step": ms, "operations": counts[k]} for k, ms in kinds.most_common()],
              "top_operations": [{"name": n, "ms_per_step": ms} for n, ms in ops.most_common(10)]}
    print(f"{args.size}², width {args.width}: {1e3 * wall:.0f} ms per step, {traced:.0f} ms in traced operations")
    for row in result["by_kind"][:12]:
        print(f"  {row['ms_per_step']:7.1f} ms  {row['operations']:4d} × {row['kind']}")
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"), result)


if __name__ == "__main__":
    main()
