"""Time the batch normalisations of one DIP step with their derivative in closed form against JAX's autodiff of the
two-pass formula — the lever ``dipjax.networks.layers.batch_norm_1image`` uses.

    python experiments/bench_batchnorm.py                 # skip net 5 × 128 at 256² and 512² (about 2 min, 2 CPU cores)
    python experiments/bench_batchnorm.py --sizes 64 --rounds 3   # a smoke run

The skip net's batch normalisations are read from the network itself (Flax's captured intermediates of every
``BatchNorm1Image``: 30 layers for 5 scales, from 4 to 132 channels). For each, a random input and a random
cotangent; the timed program is forward and reverse of ``Σ_layers ⟨g, LeakyReLU(BN(x))⟩`` with respect to the
inputs, scales and biases — the normalisation work of one step, without the convolutions. Both formulations run in
one process, alternating in rounds (``--rounds`` × ``--block`` calls each, medians), under dipjax's XLA options;
their gradients must agree to 1e-4 relative before anything is timed. Writes
``experiments/results/bench_batchnorm/metrics.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from dipjax.networks import BatchNorm1Image, skip_net
from dipjax.networks.layers import batch_norm_1image, batch_norm_1image_plain, leaky_relu
from dipjax.report import write_json
from dipjax.xla_flags import apply_default_flags

OUT = os.path.join(os.path.dirname(__file__), "results", "bench_batchnorm")
FORMULATIONS = {"closed_form": batch_norm_1image, "autodiff": batch_norm_1image_plain}


def batchnorm_shapes(size: int, width: int) -> list[tuple[int, ...]]:
    """The input shape of every batch normalisation in ``skip_net(width=width)`` on a ``size``² RGB image."""
    net = skip_net(out_channels=3, width=width)
    z = jnp.zeros(net.input_shape(size, size))
    params = jax.eval_shape(net.init, jax.random.key(0), z)
    _, state = jax.eval_shape(lambda p: net.apply(p, z, capture_intermediates=lambda m, _: isinstance(
        m, BatchNorm1Image), mutable=["intermediates"]), params)
    return [leaf.shape for leaf in jax.tree_util.tree_leaves(state["intermediates"])]


def program(bn):
    def objective(xs, scales, biases, gs):
        return sum(jnp.vdot(g, leaky_relu(bn(x, s, b))) for x, s, b, g in zip(xs, scales, biases, gs))
    return jax.jit(jax.grad(objective, argnums=(0, 1, 2)))


def bench_size(size: int, args) -> dict:
    shapes = batchnorm_shapes(size, args.width)
    keys = iter(jax.random.split(jax.random.key(args.seed), 4 * len(shapes)))
    xs = [jax.random.normal(next(keys), s) * 2 + 0.5 for s in shapes]
    gs = [jax.random.normal(next(keys), s) for s in shapes]
    scales = [1 + 0.1 * jax.random.normal(next(keys), s[-1:]) for s in shapes]
    biases = [0.1 * jax.random.normal(next(keys), s[-1:]) for s in shapes]
    compiled, grads = {}, {}
    for name, bn in FORMULATIONS.items():
        compiled[name] = program(bn).lower(xs, scales, biases, gs).compile()
        grads[name] = jax.block_until_ready(compiled[name](xs, scales, biases, gs))
    flat = {n: np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(g)]) for n, g in grads.items()}
    rel = float(np.max(np.abs(flat["closed_form"] - flat["autodiff"])) / np.max(np.abs(flat["autodiff"])))
    if rel > 1e-4:
        raise SystemExit(f"the two formulations disagree: max relative difference {rel:.2e} > 1e-4")
    times = {n: [] for n in FORMULATIONS}
    for _ in range(args.rounds):
        for name, fn in compiled.items():
            for _ in range(args.block):
                t0 = time.perf_counter()
                jax.block_until_ready(fn(xs, scales, biases, gs))
                times[name].append(time.perf_counter() - t0)
    row = {"size": size, "layers": len(shapes), "elements": int(sum(np.prod(s) for s in shapes)),
           "max_relative_gradient_difference": rel}
    for name, ts in times.items():
        row[f"{name}_ms"] = 1e3 * statistics.median(ts)
        row[f"{name}_ms_all"] = [1e3 * t for t in ts]
    row["saved_ms"] = row["autodiff_ms"] - row["closed_form_ms"]
    print(f"{size}²: {len(shapes)} batch norms, autodiff {row['autodiff_ms']:.1f} ms, closed form "
          f"{row['closed_form_ms']:.1f} ms (saves {row['saved_ms']:.1f} ms per step; gradients agree to {rel:.1e})",
          flush=True)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--block", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=OUT)
    args = p.parse_args(argv)
    apply_default_flags()
    rows = [bench_size(s, args) for s in args.sizes]
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"), {
        "command": "python experiments/bench_batchnorm.py", "backend": jax.default_backend(),
        "cpu_count": os.cpu_count(), "jax": jax.__version__, "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "width": args.width, "rounds": args.rounds, "block": args.block, "rows": rows})


if __name__ == "__main__":
    main()
