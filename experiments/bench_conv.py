"""Time one 3×3 convolution of the DIP skip net — forward, input gradient, filter gradient — in XLA and in PyTorch.

    python experiments/bench_conv.py                 # 256² and 512², 128 → 128 channels (about 2 min on 2 CPU cores)
    python experiments/bench_conv.py --sizes 128 --channels 64
    python experiments/bench_conv.py --sizes 256 --paddings valid zero --out experiments/results/bench_conv_padding

Where does the rest of the DIP step's gap to PyTorch on CPU lie (``bench_step.py``)? This isolates the operation
that dominates the step: a stride-1 3×3 convolution on a reflection-padded ``(1, H + 2, W + 2, C)`` float32 input,
``VALID``, NHWC/HWIO in XLA (``jax.lax.conv_general_dilated``, its derivatives by ``jax.vjp``, each part jitted on
its own, with dipjax's XLA options from :mod:`dipjax.xla_flags`) and NCHW channels_last in PyTorch
(``torch.nn.functional.conv2d``, ``torch.nn.grad.conv2d_input`` / ``conv2d_weight``), same data. Each time is the
median of ``--repeats`` calls after one warm-up; the two frameworks alternate per part. Both results of each part
are compared (max relative difference) before timing.

``--paddings zero`` measures the padding lever: the same convolution on the unpadded ``(1, H, W, C)`` input with
one pixel of zero padding inside the convolution (XLA ``padding=((1, 1), (1, 1))``, PyTorch ``padding=1``), which
would spare the separate reflection pad of ``valid`` (its fusions and their gradients) if the padded convolution
were as fast; the rows of one run are measured in one process.

Writes ``experiments/results/bench_conv/metrics.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

OUT = os.path.join(os.path.dirname(__file__), "results", "bench_conv")


def median_seconds(fn, repeats: int) -> float:
    import numpy as np

    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(size: int, channels: int, repeats: int, seed: int, padding: str = "valid") -> dict:
    import jax
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    border = 2 if padding == "valid" else 0  # "valid": an input padded beforehand; "zero": padded by the convolution
    x = rng.standard_normal((1, size + border, size + border, channels), np.float32)
    w = (rng.standard_normal((3, 3, channels, channels)) / np.sqrt(9 * channels)).astype(np.float32)
    g = rng.standard_normal((1, size, size, channels), np.float32)

    def conv(x, w):
        pads = "VALID" if padding == "valid" else ((1, 1), (1, 1))
        return jax.lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))

    xla = {"forward": (jax.jit(conv), (x, w)),
           "input gradient": (jax.jit(lambda x, w, g: jax.vjp(lambda v: conv(v, w), x)[1](g)[0]), (x, w, g)),
           "filter gradient": (jax.jit(lambda x, w, g: jax.vjp(lambda v: conv(x, v), w)[1](g)[0]), (x, w, g))}
    cl = torch.channels_last
    tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=cl)
    tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=cl)
    tg = torch.from_numpy(g).permute(0, 3, 1, 2).contiguous(memory_format=cl)
    tp = 0 if padding == "valid" else 1
    pt = {"forward": lambda: torch.nn.functional.conv2d(tx, tw, padding=tp),
          "input gradient": lambda: torch.nn.grad.conv2d_input(tx.shape, tw, tg, padding=tp),
          "filter gradient": lambda: torch.nn.grad.conv2d_weight(tx, tw.shape, tg, padding=tp)}
    to_nhwc = {"forward": lambda t: t.permute(0, 2, 3, 1), "input gradient": lambda t: t.permute(0, 2, 3, 1),
               "filter gradient": lambda t: t.permute(2, 3, 1, 0)}
    gflop = 2 * size * size * 9 * channels * channels / 1e9
    row = {"size": size, "channels": channels, "padding": padding, "gflop_per_part": gflop, "parts": {}}
    with torch.no_grad():
        for part, (fn, args) in xla.items():
            ours = np.asarray(fn(*args))
            theirs = to_nhwc[part](pt[part]()).contiguous().numpy()
            diff = float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))
            s_xla = median_seconds(lambda: fn(*args).block_until_ready(), repeats)
            s_torch = median_seconds(pt[part], repeats)
            row["parts"][part] = {"xla_seconds": s_xla, "torch_seconds": s_torch, "xla_gflops": gflop / s_xla,
                                  "torch_gflops": gflop / s_torch, "ratio": s_xla / s_torch,
                                  "max_rel_diff": diff}
            print(f"{size}² {padding} {part:>15}: XLA {1e3 * s_xla:7.1f} ms ({gflop / s_xla:4.0f} GFLOP/s), PyTorch "
                  f"{1e3 * s_torch:7.1f} ms ({gflop / s_torch:4.0f}), ratio {s_xla / s_torch:.2f}, "
                  f"rel. diff {diff:.1e}", flush=True)
    total_xla = sum(p["xla_seconds"] for p in row["parts"].values())
    total_torch = sum(p["torch_seconds"] for p in row["parts"].values())
    row["ratio_all_parts"] = total_xla / total_torch
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paddings", nargs="+", choices=["valid", "zero"], default=["valid"],
                    help="valid: a pre-padded input (dipjax's reflection padding); zero: padding inside the conv")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    from dipjax.xla_flags import apply_default_flags

    apply_default_flags()  # before the first JAX operation
    import jax
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    rows = [measure(s, args.channels, args.repeats, args.seed, padding) for s in args.sizes
            for padding in args.paddings]
    from dipjax.report import write_json

    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"), {
        "config": vars(args), "jax": jax.__version__, "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
