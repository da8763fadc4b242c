"""Measure XLA CPU options as levers on the DIP step: run ``bench_step.py`` once per variant of ``XLA_FLAGS`` (each in
its own process, since XLA reads its flags when the backend starts) and collect the step times.

    python experiments/bench_xla_flags.py --rounds 2       # 256², width 128, every variant (a few minutes)
    python experiments/bench_xla_flags.py --size 512 --rounds 2 --variants default,no_ynnpack,ynnpack_reductions

Each variant's run also times PyTorch channels_last in the same process (a reference for load drift between
variants), and checks dipjax's forward pass under that variant against PyTorch's to 1e-4 — a variant that changes
the network's numerics beyond that fails its run and is reported as such. Writes
``experiments/results/bench_xla_flags_<size>/metrics.json`` (the committed runs: the two commands above).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

#: name -> XLA_FLAGS (flag names from this jaxlib's xla/debug_options_flags.cc; fusion types are LibraryFusionType
#: names without their prefix).
VARIANTS = {
    "default": "",
    "ynnpack_convolutions": "--xla_cpu_experimental_ynn_fusion_type=individual_dot,individual_convolution",
    "onednn": "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true",
    "no_xnnpack": "--xla_cpu_use_xnnpack=false",
    "no_ynnpack": "--xla_cpu_experimental_ynn_fusion_type=",
    # dipjax's default: YNNPACK for reductions only (XLA's own rewrites a large reduction into slow reduce-windows)
    "ynnpack_reductions": "--xla_cpu_experimental_ynn_fusion_type=reduce",
    # the same with XLA's concurrency-optimised scheduler set either way (independent operations run side by side)
    "ynnpack_reductions_concurrency_scheduler": "--xla_cpu_experimental_ynn_fusion_type=reduce "
                                                "--xla_cpu_enable_concurrency_optimized_scheduler=true",
    "ynnpack_reductions_no_concurrency_scheduler": "--xla_cpu_experimental_ynn_fusion_type=reduce "
                                                   "--xla_cpu_enable_concurrency_optimized_scheduler=false",
}


def run_variant(name, flags, args):
    with tempfile.TemporaryDirectory() as out:
        env = dict(os.environ, XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " " + flags).strip(),
                   DIPJAX_XLA_DEFAULTS="off")  # exactly the variant's flags, not dipjax's defaults on top
        cmd = [sys.executable, os.path.join(HERE, "bench_step.py"), "--sizes", str(args.size), "--width",
               str(args.width), "--no-engine", "--warmup", "1", "--rounds", str(args.rounds), "--block", "1",
               "--out", out]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        row = {"variant": name, "xla_flags": flags, "returncode": proc.returncode}
        if proc.returncode != 0:
            row["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{name:22s} failed: {row['error']}", flush=True)
            return row
        with open(os.path.join(out, "metrics.json")) as f:
            m = json.load(f)["rows"][0]
    row.update({"dipjax_seconds": m["dipjax step"]["seconds_median"],
                "dipjax_gflops": m["dipjax step"]["gflops_per_second"],
                "compile_seconds": m["dipjax_compile_seconds"]})
    if "pytorch channels_last" in m:
        row.update({"channels_last_seconds": m["pytorch channels_last"]["seconds_median"],
                    "ratio_to_channels_last": m["ratio_to_channels_last"],
                    "forward_max_abs_diff": m["forward_max_abs_diff (pytorch channels_last)"]})
    print(f"{name:22s} {row['dipjax_seconds']:.3f} s/step ({row['dipjax_gflops']:.0f} GFLOP/s), "
          f"ratio to channels_last {row.get('ratio_to_channels_last', float('nan')):.2f}", flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out", default=None, help="experiments/results/bench_xla_flags_<size>")
    args = ap.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; expected some of {', '.join(VARIANTS)}")
    args.out = args.out or os.path.join(HERE, "results", f"bench_xla_flags_{args.size}")
    rows = [run_variant(n, VARIANTS[n], args) for n in names]
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"size": args.size, "width": args.width, "rounds": args.rounds, "cpu_count": os.cpu_count(),
                   "command": " ".join(["python", "experiments/bench_xla_flags.py"] +
                                       (argv if argv is not None else sys.argv[1:])),
                   "rows": rows}, f, indent=1)
    print(f"wrote {args.out}/metrics.json")


if __name__ == "__main__":
    main()
