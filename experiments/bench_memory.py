"""Peak resident memory of a DIP run at 512² (the performance issue's item 7), as a user runs it.

    python experiments/bench_memory.py                  # 64², 256², 512² RGB, DIP's denoising preset, 5 steps each
    python experiments/bench_memory.py --sizes 512 --steps 20

Runs ``dipjax reconstruct --task denoise --image astronaut --size SIZE --steps STEPS`` in a child process per size (the
default monitors: PSNR, SSIM every step, oracle peak; the compilation cache off, so compilation is included) and
reads the child's peak resident set size (``getrusage(RUSAGE_CHILDREN).ru_maxrss``). The peak is reached in the first
steps (the step's buffers are allocated once and reused), so a few steps measure what a full run needs. Beside it,
``estimate_gb``: the estimate the run checked against the free memory before it started (``memory_estimate_bytes`` of
its ``metrics.json``, XLA's account of its programs' buffers, :mod:`dipjax.memory`), and ``rss_minus_estimate_gb``:
what the process holds beyond it (Python, the JAX runtime and compiler, the images), about constant across sizes if
the estimate tracks what grows with the run.

Writes ``experiments/results/bench_memory/metrics.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

OUT = os.path.join(os.path.dirname(__file__), "results", "bench_memory")


def measure(size: int, steps: int) -> dict:
    """One child run at ``size``: its peak resident memory, the engine's estimate and timings."""
    with tempfile.TemporaryDirectory() as scratch:
        cmd = [sys.executable, "-m", "dipjax.cli", "reconstruct", "--task", "denoise", "--image", "astronaut",
               "--size", str(size), "--steps", str(steps), "--no-progress", "--out", os.path.join(scratch, "run")]
        start = time.perf_counter()
        # a fresh Python process per size: RUSAGE_CHILDREN's maximum is over every child waited for so far, so
        # sizes run from the smallest up and each reading is its own child's peak
        done = subprocess.run(cmd, env={**os.environ, "DIPJAX_COMPILATION_CACHE": "off"}, capture_output=True,
                              text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        with open(os.path.join(scratch, "run", "astronaut", "metrics.json")) as f:
            metrics = json.load(f)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 20
    estimate_gb = (metrics["memory_estimate_bytes"] or 0) / 2 ** 30
    return {"command": " ".join(["dipjax"] + cmd[3:-2]), "size": size, "steps": steps, "peak_rss_gb": peak_gb,
            "estimate_gb": estimate_gb, "rss_minus_estimate_gb": peak_gb - estimate_gb, "wall_seconds": wall,
            "compile_seconds": metrics["compile_seconds"], "seconds_per_step": metrics["seconds_per_step"],
            "hyperparameters": metrics["config"]["hyperparameters"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 512])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    import jax

    from dipjax.report import write_json

    rows = []
    for size in sorted(args.sizes):
        rows.append(measure(size, args.steps))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "hyperparameters"}), flush=True)
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"),
               {"rows": rows, "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                                          "jax": jax.__version__}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
