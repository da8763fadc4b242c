"""Time the 1×1 convolutions' derivatives three ways, alone and inside the DIP step, in one process.

    python experiments/bench_pointwise.py                  # 256² and 512², width 128 (about 6 min on 2 CPU cores)
    python experiments/bench_pointwise.py --sizes 128 --width 32 --rounds 2      # a smoke run

``dipjax.networks.layers.pointwise_conv`` carries a 1×1 convolution's tangent ``dx W + x dW`` as products over the
channel axis, so that reverse mode computes ``g Wᵀ`` and the filter gradient ``Σ_pixels xᵀ g`` as matrix products
(the performance issue's lever 3, README). How that product is written decides whether XLA's CPU compiler copies
the activation first:

* ``xla``: no custom derivative, XLA's own convolution gradients (their filter gradient lays ``x`` out
  channel-major, a strided transpose);
* ``4d``: products over the ``(N, H, W, C)`` arrays as they are, contracting ``N, H, W`` for the filter gradient
  (dipjax before this measurement): XLA still copies ``x`` channel-major, as a plain copy;
* ``matrix``: the same products over ``x`` seen as a ``(pixels, C)`` matrix (dipjax's ``_channel_product``): XLA's
  matrix product reads ``xᵀ`` from the row-major matrix with no copy.

Part 1 times forward and both gradients of one 1×1 convolution of the skip net (``width → width`` and the skip
branch's ``width → 4``) at each size, the three formulations alternating, and checks they agree (float32 rounding).
Part 2 times the whole DIP step (skip net 5 × width, RGB, Adam; ``bench_step.py``'s problem) with the ``4d`` and the
``matrix`` product: each variant's step is traced and compiled with ``layers._channel_product`` set to it for the
duration of the tracing only (the module is restored before anything is timed), then the two alternate in rounds
(:func:`step_ab`, which ``bench_reflection_pad.py`` uses too).
Each time is a median after warm-up. XLA runs with dipjax's options (:mod:`dipjax.xla_flags`).

Writes ``experiments/results/bench_pointwise/metrics.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from bench_step import alternate, dipjax_setup  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results", "bench_pointwise")
# a fusion of the compiled step that only moves data into another layout (``copy_bitcast_fusion``,
# ``transpose_copy_fusion``, ...), counted in each variant's optimised HLO
LAYOUT_FUSION = re.compile(r"^\s*(?:ROOT )?%\w*(?:copy|transpose)\w*fusion(?:\.\d+)? = ", re.M)


def product_4d(x, w):
    """``Σ_c x[..., c] w[c, :]`` over the 4-D array (the form dipjax used before ``matrix``)."""
    import jax

    return jax.lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))


@contextlib.contextmanager
def layer_function(name: str, fn):
    """``dipjax.networks.layers.<name>`` set to ``fn`` while a step is traced; restored on exit."""
    from dipjax.networks import layers

    saved = getattr(layers, name)
    setattr(layers, name, fn)
    try:
        yield
    finally:
        setattr(layers, name, saved)


def layer_rows(size: int, width: int, args) -> list[dict]:
    import jax
    import numpy as np

    from dipjax.networks import layers

    rows = []
    for c_in, c_out in ((width, width), (width, 4)):
        rng = np.random.default_rng(args.seed)
        x = jax.device_put(rng.standard_normal((1, size, size, c_in), np.float32))
        w = jax.device_put((rng.standard_normal((1, 1, c_in, c_out)) / np.sqrt(c_in)).astype(np.float32))
        g = jax.device_put(rng.standard_normal((1, size, size, c_out), np.float32))

        def with_product(product):
            @jax.custom_jvp
            def conv(x, w):
                return layers._conv_nhwc(x, w)

            conv.defjvp(lambda p, t: (layers._conv_nhwc(*p), product(t[0], p[1][0, 0]) + product(p[0], t[1][0, 0])))
            return conv

        forms = {"xla": layers._conv_nhwc, "4d": with_product(product_4d),
                 "matrix": with_product(layers._channel_product)}
        compiled = {}
        for name, f in forms.items():
            def fwd_and_grads(x, w, g, f=f):
                y, vjp = jax.vjp(f, x, w)
                return (y, *vjp(g))
            compiled[name] = jax.jit(fwd_and_grads).lower(x, w, g).compile()
        outs = {k: [np.asarray(a) for a in c(x, w, g)] for k, c in compiled.items()}
        diff = max(float(np.abs(a - b).max() / np.abs(b).max()) for k in ("4d", "matrix")
                   for a, b in zip(outs[k], outs["xla"]))
        if not diff < 1e-5:
            raise SystemExit(f"the formulations disagree by {diff:.3g} relative (> 1e-5): nothing was timed")
        timed = alternate({k: (lambda c=c: jax.block_until_ready(c(x, w, g))) for k, c in compiled.items()},
                          1, args.rounds, args.block)
        row = {"size": size, "c_in": c_in, "c_out": c_out, "max_rel_diff_to_xla": diff, **timed}
        print(f"{size}² 1×1 {c_in}→{c_out}: " + ", ".join(f"{k} {v['seconds_median'] * 1e3:.1f} ms"
                                                        for k, v in timed.items()), flush=True)
        rows.append(row)
    return rows


def step_ab(size: int, args, name: str, variants: dict) -> dict:
    """The DIP step (``bench_step.py``'s problem) compiled once per variant of ``layers.<name>`` (``variants``: label →
    function, the baseline first, dipjax's form last), the variants alternating in rounds; each trains its own copy
    of the state from the same start. Also the count of layout fusions in each compiled program and the relative
    difference of one step's loss."""
    import jax

    problem, method, state, _ = dipjax_setup(size, args.width, args.seed)
    steps = {}
    for label, fn in variants.items():
        with layer_function(name, fn):
            steps[label] = jax.jit(method.step).lower(state, problem, jax.random.key(0)).compile()
    keys = iter(jax.random.split(jax.random.key(args.seed + 2), 10_000))
    states = dict.fromkeys(steps, state)

    def run(k):
        states[k], info = steps[k](states[k], problem, next(keys))
        jax.block_until_ready(info["loss"])

    base, ours = list(steps)[0], list(steps)[-1]
    copies = {k: len(LAYOUT_FUSION.findall(c.as_text())) for k, c in steps.items()}
    one = {k: steps[k](state, problem, jax.random.key(7))[1]["loss"] for k in steps}
    loss_diff = abs(float(one[base]) - float(one[ours])) / abs(float(one[ours]))
    timed = alternate({k: (lambda k=k: run(k)) for k in steps}, args.warmup, args.rounds, args.block)
    ratio = timed[ours]["seconds_median"] / timed[base]["seconds_median"]
    print(f"{size}² DIP step: " + ", ".join(f"{k} {v['seconds_median'] * 1e3:.1f} ms" for k, v in timed.items())
          + f" (ratio {ratio:.3f}); layout fusions {copies}, loss differs by {loss_diff:.2g}", flush=True)
    return {"size": size, "width": args.width, "loss_rel_diff": loss_diff, "layout_fusions": copies, **timed,
            f"ratio_{ours}_to_{base}": ratio}


def step_row(size: int, args) -> dict:
    from dipjax.networks import layers

    return step_ab(size, args, "_channel_product", {"4d": product_4d, "matrix": layers._channel_product})


def bench_args(argv, description: str, out: str):
    """dipjax's XLA options set (before JAX starts a backend), then the options this script and
    ``bench_reflection_pad.py`` share, parsed; returns them and the list of sizes."""
    from dipjax.xla_flags import apply_default_flags

    apply_default_flags()  # dipjax's XLA options (dipjax/xla_flags.py)
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--sizes", default="256,512", help="comma-separated image sides")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=2, help="timed calls of each contender per round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=out)
    args = ap.parse_args(argv)
    try:
        return args, [int(s) for s in args.sizes.split(",")]
    except ValueError:
        raise SystemExit(f"--sizes expects comma-separated integers, got {args.sizes!r}") from None


def write_result(args, script: str, argv, **parts) -> None:
    """``parts`` with the versions, the XLA options and the command line, as ``<--out>/metrics.json``."""
    import jax

    from dipjax.report import write_json

    command = f"python experiments/{script} " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"jax": jax.__version__, "cpu_count": os.cpu_count(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
              "command": command, **parts}
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"), result)
    print(f"wrote {args.out}/metrics.json")


def main(argv=None):
    args, sizes = bench_args(argv, __doc__.splitlines()[0], OUT)
    write_result(args, "bench_pointwise.py", argv, layers=[r for s in sizes for r in layer_rows(s, args.width, args)],
                 steps=[step_row(s, args) for s in sizes])


if __name__ == "__main__":
    main()
