"""Time the reflection padding of the DIP step's 3×3 convolutions two ways, alone and inside the step, in one process.

    python experiments/bench_reflection_pad.py              # 256² and 512², width 128 (about 5 min on 2 CPU cores)
    python experiments/bench_reflection_pad.py --sizes 128 --width 32 --rounds 2    # a smoke run

Every 3×3 convolution of dipjax's networks pads its input by one mirrored pixel first (PyTorch's
``ReflectionPad2d``). Two ways to write that pad, with the same values:

* ``jnp.pad``: ``jnp.pad(x, ..., mode="reflect")``, which pads one axis after the other (dipjax before this
  measurement). XLA compiles the forward as two copies and the derivative as one full-size pass per border piece;
* ``bands``: :func:`dipjax.networks.layers.reflection_pad`, one concatenation of the three row bands, each padded
  along the columns: one pass each way.

Part 1 times forward and reverse of ``pad(LeakyReLU(a x + b))`` (the activation and batch-norm scale that precede
each pad in the network, so that XLA fuses as it does there) on a ``(1, S, S, width)`` input, the two alternating,
and checks that the forward passes are equal and the gradients agree to float32 rounding (their sums of the border
contributions are ordered differently). Part 2 times the whole DIP step with ``layers.reflection_pad`` set to each
form while the step is traced (``bench_pointwise.step_ab``). Each time is a median after warm-up; XLA runs with
dipjax's options (:mod:`dipjax.xla_flags`).

Writes ``experiments/results/bench_reflection_pad/metrics.json`` (``--out``).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from bench_pointwise import bench_args, step_ab, write_result  # noqa: E402
from bench_step import alternate  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results", "bench_reflection_pad")


def pad_one_axis_at_a_time(x, p: int):
    """``jnp.pad(..., mode="reflect")`` over the two image axes (dipjax's Conv2d before ``reflection_pad``)."""
    import jax.numpy as jnp

    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def pad_row(size: int, args) -> dict:
    import jax
    import numpy as np

    from dipjax.networks.layers import reflection_pad

    rng = np.random.default_rng(args.seed)
    x = jax.device_put(rng.standard_normal((1, size, size, args.width), np.float32))
    g = jax.device_put(rng.standard_normal((1, size + 2, size + 2, args.width), np.float32))
    compiled = {}
    for label, pad in (("jnp.pad", pad_one_axis_at_a_time), ("bands", reflection_pad)):
        def forward_and_reverse(x, g, pad=pad):
            y, vjp = jax.vjp(lambda v: pad(jax.nn.leaky_relu(1.1 * v + 0.1, 0.2), 1), x)
            return y, vjp(g)[0]
        compiled[label] = jax.jit(forward_and_reverse).lower(x, g).compile()
    (y0, d0), (y1, d1) = [[np.asarray(a) for a in c(x, g)] for c in compiled.values()]
    if not np.array_equal(y0, y1):
        raise SystemExit("the two pads differ in the forward pass: nothing was timed")
    diff = float(np.abs(d1 - d0).max() / np.abs(d0).max())
    if not diff < 1e-6:
        raise SystemExit(f"the two pads' gradients differ by {diff:.3g} relative (> 1e-6): nothing was timed")
    timed = alternate({k: (lambda c=c: jax.block_until_ready(c(x, g))) for k, c in compiled.items()},
                      1, args.rounds, args.block)
    print(f"{size}² pad of {args.width} channels, forward and reverse: "
          + ", ".join(f"{k} {v['seconds_median'] * 1e3:.1f} ms" for k, v in timed.items()), flush=True)
    return {"size": size, "channels": args.width, "gradient_max_rel_diff": diff, **timed}


def main(argv=None):
    args, sizes = bench_args(argv, __doc__.splitlines()[0], OUT)
    from dipjax.networks.layers import reflection_pad

    forms = {"jnp.pad": pad_one_axis_at_a_time, "bands": reflection_pad}
    write_result(args, "bench_reflection_pad.py", argv, pads=[pad_row(s, args) for s in sizes],
                 steps=[step_ab(s, args, "reflection_pad", forms) for s in sizes])


if __name__ == "__main__":
    main()
