"""Peak resident memory of a DIP run at 512² (the performance issue's item 7), as a user runs it.

    python experiments/bench_memory.py                  # 512² RGB, DIP's denoising preset (skip net 5 × 128), 5 steps
    python experiments/bench_memory.py --size 256 --steps 20

Runs ``dipjax reconstruct --task denoise --image astronaut --size SIZE --steps STEPS`` in a child process (the
default monitors: PSNR, SSIM every step, oracle peak; the compilation cache off, so compilation is included) and
reads the child's peak resident set size (``getrusage(RUSAGE_CHILDREN).ru_maxrss``). The peak is reached in the first
steps (the step's buffers are allocated once and reused), so a few steps measure what a full run needs.

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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        cmd = [sys.executable, "-m", "dipjax.cli", "reconstruct", "--task", "denoise", "--image", "astronaut",
               "--size", str(args.size), "--steps", str(args.steps), "--no-progress", "--out",
               os.path.join(scratch, "run")]
        start = time.perf_counter()
        done = subprocess.run(cmd, env={**os.environ, "DIPJAX_COMPILATION_CACHE": "off"}, capture_output=True,
                              text=True)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        with open(os.path.join(scratch, "run", "astronaut", "metrics.json")) as f:
            metrics = json.load(f)
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2 ** 20
    import jax

    from dipjax.report import write_json

    row = {"command": " ".join(["dipjax"] + cmd[3:-2]), "size": args.size, "steps": args.steps,
           "peak_rss_gb": peak_gb, "wall_seconds": wall, "compile_seconds": metrics["compile_seconds"],
           "seconds_per_step": metrics["seconds_per_step"], "hyperparameters": metrics["config"]["hyperparameters"],
           "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "jax": jax.__version__}}
    print(json.dumps({k: v for k, v in row.items() if k != "hyperparameters"}))
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"), row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
