"""Time to quality: DIP denoising with ES-WMV stopping early against the full budget, over five bundled images.

    python experiments/time_to_quality.py                        # 64² RGB, width 32, 3000 steps (about 10 min)
    python experiments/time_to_quality.py --size 256 --width 128  # the performance issue's size (hours on 2 cores)

Two ``dipjax dataset`` runs of the same configuration (DIP's denoising preset, σ = 25, its 3000-step budget, ES-WMV
with W = 100, P = 1000, the same seed): one runs every step (``--stop wmv``), one ends each image once the rule has
fired (``--stop wmv --stop-early``). Per image and on average: the wall time of each, the PSNR of the iterate the rule
returns, the oracle peak and the final iterate of the full run, so the table shows what stopping early saves and what
it loses against the oracle.

Writes ``experiments/results/time_to_quality/metrics.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

OUT = os.path.join(os.path.dirname(__file__), "results", "time_to_quality")
IMAGES = ("astronaut", "camera", "chelsea", "coffee", "moon")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    runs = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, extra in (("full", []), ("early", ["--stop-early"])):
            out = os.path.join(scratch, name)
            cmd = [sys.executable, "-m", "dipjax.cli", "dataset", *[a for i in IMAGES for a in ("--inputs", i)],
                   "--task", "denoise", "--sigma", "25", "--rgb", "--size", str(args.size), "--width",
                   str(args.width), "--steps", str(args.steps), "--stop", "wmv", *extra, "--no-progress", "--out", out]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(done.stderr[-3000:], file=sys.stderr)
                return 1
            with open(os.path.join(out, "summary.json")) as f:
                runs[name] = json.load(f)
            print(f"{name}: {runs[name]['throughput']['wall_seconds']:.0f} s", flush=True)
            print(done.stdout[-2500:], flush=True)  # the run's summary table, in the log even if a later run fails
    rows = []
    for full, early in zip(runs["full"]["per_image"], runs["early"]["per_image"]):
        rows.append({"image": full["image"], "seconds_full": full["seconds"], "seconds_early": early["seconds"],
                     "steps_early": early["steps"], "iter_stop": early.get("iter_stop"),
                     "psnr_input": full["psnr_input"], "psnr_final_full": full["psnr_final"],
                     "psnr_peak_oracle": full["psnr_peak_oracle"], "iter_peak_oracle": full["iter_peak_oracle"],
                     "psnr_stop": early.get("psnr_stop"),
                     "psnr_lost_to_oracle": full["psnr_peak_oracle"] - early["psnr_stop"]
                     if early.get("psnr_stop") is not None else None})
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]
            if k != "image" and all(isinstance(r[k], (int, float)) for r in rows)}
    import jax

    from dipjax.report import write_json

    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"), {
        "config": {"task": "denoise", "sigma": 25, "method": "dip", "images": list(IMAGES), "size": args.size,
                   "width": args.width, "steps": args.steps, "stop": "wmv (W 100, P 1000)"},
        "machine": {"cpu_count": os.cpu_count(), "jax": jax.__version__, "backend": jax.default_backend()},
        "rows": rows, "mean": mean,
        "wall_seconds": {k: v["throughput"]["wall_seconds"] for k, v in runs.items()},
    })
    print(json.dumps(mean, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
