"""Throughput of ``dipjax dataset``: ten bundled images at 64², one configuration, on 1, 2 and 4 devices.

    python experiments/bench_dataset.py                      # DIP denoising, width 32, 300 steps (about 6 min)
    python experiments/bench_dataset.py --devices 1 2 4 8 --steps 1000

Each device count runs in a fresh process (``XLA_FLAGS=--xla_force_host_platform_device_count=D`` on CPU, so one
machine shows how the runner shares work; forced host devices share the same cores, so on a 2-core CPU this measures
the runner's overhead and scaling limits, not extra compute) with a fresh output folder, then reads its
``summary.json``: images per hour, compile seconds, wall seconds and each device's share of the wall time it had
work, and the mean PSNRs, which must not depend on the device count beyond float rounding.

Writes ``experiments/results/bench_dataset/metrics.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

OUT = os.path.join(os.path.dirname(__file__), "results", "bench_dataset")
IMAGES = ("astronaut", "camera", "cat", "chelsea", "coffee", "coins", "moon", "page", "phantom", "rocket")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    import jax  # the backend, for the record; the runs are subprocesses

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        listing = os.path.join(scratch, "images.txt")
        with open(listing, "w") as f:
            f.write("\n".join(IMAGES) + "\n")
        for count in args.devices:
            out = os.path.join(scratch, f"out{count}")
            env = {**os.environ, "DIPJAX_COMPILATION_CACHE": "off"}
            if jax.default_backend() == "cpu":
                env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                                    f" --xla_force_host_platform_device_count={count}").strip()
            cmd = [sys.executable, "-m", "dipjax.cli", "dataset", "--inputs", listing, "--task", "denoise",
                   "--gray", "--size", str(args.size), "--width", str(args.width), "--steps", str(args.steps),
                   "--devices", str(count), "--out", out, "--no-progress"]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            with open(os.path.join(out, "summary.json")) as f:
                summary = json.load(f)
            t = summary["throughput"]
            row = {"devices": count, "images": summary["images"], "wall_seconds": t["wall_seconds"],
                   "images_per_hour": t["images_per_hour"], "compile_seconds": t["compile_seconds"],
                   "busy_fraction": [d["busy_fraction"] for d in t["processes"][0]["devices"]],
                   "psnr_final_mean": summary["metrics"]["psnr_final"]["mean"],
                   "psnr_peak_oracle_mean": summary["metrics"]["psnr_peak_oracle"]["mean"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(out)
    from dipjax.report import write_json

    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"), {
        "config": {"task": "denoise", "sigma": 25, "method": "dip", "images": list(IMAGES), "gray": True,
                   "size": args.size, "width": args.width, "steps": args.steps},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "jax": jax.__version__,
                    "backend": jax.default_backend()},
        "rows": rows,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
