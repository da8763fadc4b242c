"""Compile time of a network's initialisation: ``network.init`` (one threefry loop per weight array) against
``dipjax.networks.init_params`` (the same values, the weights drawn together).

    python experiments/bench_init_compile.py            # three networks, 3 rounds (about 3 min, 2 CPU cores)
    python experiments/bench_init_compile.py --rounds 1 # a smoke run

Networks: the test suite's DIP skip net (width 8, 2 scales, 32² grayscale), DIP's preset (skip net 5 × 128, 256²
RGB) and aSeqDIP's MediumUNet (64², two channels). For each, both programs are jitted afresh in every round (a new
function, so nothing is reused from an earlier compilation), alternating, under dipjax's XLA options; their
variables must be bit-identical before anything is timed. Also times one call of each compiled program (the
together-draw computes every array at the length of the largest and keeps its prefix). Writes
``experiments/results/bench_init_compile/metrics.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import numpy as np

from dipjax.networks import init_params, medium_unet, skip_net
from dipjax.report import write_json
from dipjax.xla_flags import apply_default_flags

OUT = os.path.join(os.path.dirname(__file__), "results", "bench_init_compile")
NETWORKS = {"skip net 8 × 2, 32² gray (tests)": (lambda: skip_net(1, width=8, scales=2), 32),
            "skip net 128 × 5, 256² RGB (DIP preset)": (lambda: skip_net(3, width=128, scales=5), 256),
            "MediumUNet, 64² (aSeqDIP MRI/CT)": (lambda: medium_unet(), 64)}


def _programs(net):
    return {"network.init": lambda k, z: net.init(k, z), "init_params": lambda k, z: init_params(net, k, z)}


def _compile(fn, key, z):
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(key, z).compile()
    return compiled, time.perf_counter() - t0


def bench(label, make, size, rounds):
    net = make()
    key = jax.random.key(0)
    z = jax.random.uniform(jax.random.key(1), net.input_shape(size, size)) * 0.1
    compile_s = {name: [] for name in _programs(net)}
    run_s = {name: [] for name in _programs(net)}
    values = {}
    for _ in range(rounds):
        for name, fn in _programs(net).items():  # fresh functions: a new compilation each round
            compiled, seconds = _compile(fn, key, z)
            compile_s[name].append(seconds)
            values[name] = jax.block_until_ready(compiled(key, z))
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(key, z))
            run_s[name].append(time.perf_counter() - t0)
    a, b = (jax.tree_util.tree_leaves(v) for v in values.values())
    if not all(np.array_equal(x, y) for x, y in zip(a, b)):
        raise SystemExit(f"{label}: init_params differs from network.init")
    row = {"network": label, "size": size, "weight_arrays": len(a),
           "parameters": int(sum(x.size for x in a))}
    for name in compile_s:
        row[f"{name}_compile_s"] = statistics.median(compile_s[name])
        row[f"{name}_compile_s_all"] = compile_s[name]
        row[f"{name}_run_ms"] = 1e3 * statistics.median(run_s[name])
    print(f"{label}: compile network.init {row['network.init_compile_s']:.2f} s, init_params "
          f"{row['init_params_compile_s']:.2f} s; run {row['network.init_run_ms']:.1f} / "
          f"{row['init_params_run_ms']:.1f} ms", flush=True)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=OUT)
    args = p.parse_args(argv)
    apply_default_flags()
    rows = [bench(label, make, size, args.rounds) for label, (make, size) in NETWORKS.items()]
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"), {
        "command": "python experiments/bench_init_compile.py", "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(), "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()
