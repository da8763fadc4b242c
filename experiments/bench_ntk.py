"""Time ``empirical_ntk`` on the performance issue's network: a 3-layer 1-D circular CNN of width C, the full kernel.

    python experiments/bench_ntk.py                          # C = 256 and 1024 (about 2 min on 2 CPU cores)
    python experiments/bench_ntk.py --widths 256 2048 --reference-columns 16

The network (``dipjax.theory.stax``): Conv(C, 3, CIRCULAR) → ReLU → Conv(C, 3, CIRCULAR) → ReLU → Conv(1, 3,
CIRCULAR), NTK parameterisation, W_std = √2, b_std = 0.1; input 4 signals × 32 positions × 8 channels, so the kernel
is 128 × 128 (3·8·C + 3·C² + 3·C + 2C + 1 parameters), all in float64.

For each width, in a fresh process (so that no compilation is shared and memory is measured per width):

* ``default``: :func:`dipjax.theory.empirical_ntk` as a user calls it (mode ``"auto"``: Jacobian rows by reverse mode
  with convolutions as patch matrix products, contracted with GEMMs), wall time including compilation;
* ``reference``: columns of ``K`` computed the way dipjax computed them before, ``J (Jᵀ e_i)`` (one reverse and one
  forward pass each, :func:`~dipjax.theory.ntk_matvec`), for ``--reference-columns`` indices spread over the kernel
  (by default all 128 up to C = 256, and 16 above: XLA:CPU takes about 8 s per column at C = 1024 in float64), and ``max |K[:, i] − K_ref[:, i]| / max |K_ref|`` (the issue's check is ≤ 1e-10);
* the process's peak resident memory.

neural-tangents 0.6.5 (its structured derivatives), on this machine kind with a legacy JAX, as the performance issue
reports it: 2.6 s at C = 256, 123 s at C = 1024, 2124 s at C = 4096 (neural-tangents is not installable beside the
JAX dipjax needs, so it is not re-run here).

Writes ``experiments/results/bench_ntk/metrics.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

OUT = os.path.join(os.path.dirname(__file__), "results", "bench_ntk")
NEURAL_TANGENTS_SECONDS = {256: 2.6, 1024: 123.0, 4096: 2124.0}  # the performance issue's measurements


def measure(width: int, columns: int) -> dict:
    """One width, in this process: default mode timed (compilation included), then ``columns`` reference columns."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)  # this process is the benchmark's own child: nothing else shares it
    from dipjax.theory import empirical_ntk, ntk_matvec, stax

    layers = [stax.Conv(width, (3,), padding="CIRCULAR", W_std=2 ** 0.5, b_std=0.1), stax.Relu(),
              stax.Conv(width, (3,), padding="CIRCULAR", W_std=2 ** 0.5, b_std=0.1), stax.Relu(),
              stax.Conv(1, (3,), padding="CIRCULAR", W_std=2 ** 0.5, b_std=0.1)]
    init_fn, apply_fn, _ = stax.serial(*layers)
    z = jax.random.normal(jax.random.PRNGKey(0), (4, 32, 8), jnp.float64)
    params = jax.tree_util.tree_map(lambda p: p.astype(jnp.float64), init_fn(jax.random.PRNGKey(1), z.shape)[1])

    def apply(p, x):
        return apply_fn(p, x)[..., 0]

    row = {"width": width, "parameters": int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))),
           "outputs": 128}
    start = time.perf_counter()
    kernel = empirical_ntk(apply, params, z).block_until_ready()
    row["default_seconds"] = time.perf_counter() - start
    if columns:
        start = time.perf_counter()
        matvec = ntk_matvec(apply, params, z)
        picked = sorted({int(i) for i in jnp.linspace(0, 127, min(columns, 128)).round()})
        reference = jnp.stack([matvec(jnp.zeros(128, jnp.float64).at[i].set(1.0)) for i in picked], axis=1)
        row["reference_seconds"] = time.perf_counter() - start
        row["reference_columns"] = len(picked)
        row["max_rel_diff_to_reference"] = float(jnp.max(jnp.abs(kernel[:, picked] - reference))
                                                 / jnp.max(jnp.abs(reference)))
    row["trace"] = float(jnp.trace(kernel))
    row["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    row["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--reference-columns", type=int, default=None,
                    help="columns of K recomputed the old way and compared (default 128 up to C = 256, else 16; "
                         "0: none)")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one width, print JSON
    args = ap.parse_args(argv)
    if args.one is not None:
        from dipjax.xla_flags import apply_default_flags

        apply_default_flags()
        columns = args.reference_columns if args.reference_columns is not None else 128 if args.one <= 256 else 16
        print(json.dumps(measure(args.one, columns)))
        return 0
    from dipjax.report import write_json

    import jax

    os.makedirs(args.out, exist_ok=True)
    rows = []
    for width in args.widths:
        cmd = [sys.executable, __file__, "--one", str(width)]
        if args.reference_columns is not None:
            cmd += ["--reference-columns", str(args.reference_columns)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["neural_tangents_seconds"] = NEURAL_TANGENTS_SECONDS.get(width)
        rows.append(row)
        print(json.dumps(row), flush=True)
        # written after every width, so that a run stopped at a large width keeps the smaller ones
        write_json(os.path.join(args.out, "metrics.json"), {
            "network": "3-layer 1-D circular CNN (stax), input (4, 32, 8), kernel 128 x 128, float64",
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "jax": jax.__version__,
                        "backend": jax.default_backend(), "device": jax.devices()[0].device_kind},
            "rows": rows,
            "checks": {f"C={r['width']}": {
                "seconds_le_neural_tangents": (r["default_seconds"] <= r["neural_tangents_seconds"]
                                               if r["neural_tangents_seconds"] else None),
                "equal_to_reference_1e-10": (r["max_rel_diff_to_reference"] <= 1e-10
                                             if "max_rel_diff_to_reference" in r else None)} for r in rows},
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
