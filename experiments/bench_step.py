"""Time one DIP step — skip net 5 × width, Adam, mean-squared data term, one RGB image — in dipjax and, when PyTorch
is importable, in the same architecture in PyTorch (eager NCHW and channels_last), in one process.

    python experiments/bench_step.py                       # 256² and 512², width 128 (about 10 min on 2 CPU cores)
    python experiments/bench_step.py --sizes 64 --width 32 --rounds 2 --quick-engine   # a smoke run (a minute)

PyTorch is never a dependency of dipjax; ``pip install torch==2.13.0`` (the CPU build) makes the comparison run.
Without it only dipjax's rows are written.

Protocol, per image size:

* the same network in both frameworks: the PyTorch net is built from the same description (reflection padding,
  stride-2 3×3 downsampling, bilinear ×2 upsampling with ``align_corners=False``, BatchNorm on the image's own
  statistics, LeakyReLU 0.2, skip branches of 4 channels, 1×1 head, sigmoid), its weights copied from dipjax's, and
  a forward pass on the same input, in full float32 on both sides, must agree to 1e-4 (``forward_max_abs_diff``)
  before anything is timed (the timed steps use each framework's default precision: TF32 convolutions on GPUs);
* one step = input perturbation ``z + σ_p ε``, forward, ``mean (f(z) − y)²``, backward, Adam update, the result
  on the host-visible device (``block_until_ready`` / ``torch.cuda.synchronize``);
* after ``--warmup`` steps of each, ``--rounds`` rounds in which every contender runs ``--settle`` untimed steps and
  then ``--block`` timed steps in turn (alternating, so that load on the machine hits all alike; the untimed step
  lets caches and the other framework's worker threads settle after a switch: with ``--settle 0`` the first
  dipjax step after PyTorch's is the slowest of its block at 512²); the median of the per-step times;
* ``dipjax step``: the method's jitted step alone (what PyTorch's loop does); ``dipjax engine``: the same steps
  through :func:`dipjax.engine.reconstruct` with its default monitors (PSNR, SSIM, oracle peak) and the engine's
  default strategy — what a user of ``dipjax reconstruct`` pays;
* XLA runs with dipjax's options (:mod:`dipjax.xla_flags`; ``DIPJAX_XLA_DEFAULTS=off`` for XLA's own), recorded as
  ``xla_flags``;
* FLOPs: the multiply–adds of every convolution and matrix product in the jitted step's program (forward, input
  gradients and weight gradients, read from the jaxpr: ``2 · |output| · C_in/groups · k_h · k_w`` per convolution,
  the 1×1 convolutions' derivatives as matrix products), so achieved GFLOP/s compare against the same count on both
  sides.

Writes ``experiments/results/bench_step/{metrics.json, figure.png}`` (``--out``), with ``ratio_to_channels_last``
(dipjax step time / PyTorch channels_last time; the performance issue's target is ≤ 1 at 256² and 512²).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.core import jaxprs_in_params

from dipjax.data import load_image
from dipjax.engine import reconstruct
from dipjax.methods import DIP
from dipjax.networks import skip_net
from dipjax.networks.layers import count_params
from dipjax.operators import Denoising, gaussian_noise
from dipjax.problem import make_problem
from dipjax.report import write_json
from dipjax.xla_flags import apply_default_flags

OUT = os.path.join(os.path.dirname(__file__), "results", "bench_step")
SIGMA_P = 1 / 30  # DIP's input perturbation at σ = 25 (the denoising preset)


# --------------------------------------------------------------------------------------------------- FLOP count
def product_flops(jaxpr) -> int:
    """Floating-point operations of every ``conv_general_dilated`` and ``dot_general`` in a (closed) jaxpr,
    sub-jaxprs included (custom derivative rules too): ``2 · |output| · (C_in / groups) · prod(kernel window)`` per
    convolution, ``2 · |output| · prod(contracted sizes)`` per matrix product (the 1×1 convolutions' derivatives)."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            spec = eqn.params["dimension_numbers"].rhs_spec  # (out feature, in feature, spatial...)
            window = int(np.prod([rhs[d] for d in spec[2:]]))
            total += 2 * int(np.prod(eqn.outvars[0].aval.shape)) * rhs[spec[1]] * window
        elif eqn.primitive.name == "dot_general":
            (contracting, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += 2 * int(np.prod(eqn.outvars[0].aval.shape)) * int(np.prod([lhs[d] for d in contracting]))
        for sub in jaxprs_in_params(eqn.params):
            total += product_flops(sub)
    return total


# ------------------------------------------------------------------------------------------------------- dipjax
def dipjax_setup(size: int, width: int, seed: int):
    """The problem (σ = 25 denoising of astronaut), the method and its initial state; the jitted bare step."""
    op = Denoising(in_shape=(size, size, 3))
    problem = make_problem(jax.random.key(seed), op, load_image("astronaut", size, 3),
                           lambda k, y: gaussian_noise(k, y, 25 / 255, (0, 1)))
    method = DIP(network=skip_net(out_channels=3, width=width), input_noise_std=SIGMA_P)
    state = method.init(jax.random.key(seed + 1), problem)
    step = jax.jit(method.step, donate_argnums=0)
    return problem, method, state, step


# ------------------------------------------------------------------------------------------------------ PyTorch
def torch_skip_net(torch, width: int, scales: int, in_channels: int, out_channels: int, skip_channels: int):
    """dipjax's :class:`~dipjax.networks.SkipNet` written in PyTorch, with the same parameter names."""
    nn = torch.nn

    class Conv(nn.Module):
        def __init__(self, c_in, c_out, k, stride=1):
            super().__init__()
            p = (k - 1) // 2
            self.pad = nn.ReflectionPad2d(p) if p else nn.Identity()
            self.conv = nn.Conv2d(c_in, c_out, k, stride, padding=0)

        def forward(self, x):
            return self.conv(self.pad(x))

    class SkipNet(nn.Module):
        def __init__(self):
            super().__init__()
            L = self.layers = nn.ModuleDict()
            c = in_channels
            for i in range(scales):
                L[f"skip{i}_conv"], L[f"skip{i}_bn"] = Conv(c, skip_channels, 1), nn.BatchNorm2d(skip_channels)
                L[f"down{i}_conv1"], L[f"down{i}_bn1"] = Conv(c, width, 3, 2), nn.BatchNorm2d(width)
                L[f"down{i}_conv2"], L[f"down{i}_bn2"] = Conv(width, width, 3), nn.BatchNorm2d(width)
                c = width
            for i in range(scales):
                L[f"up{i}_bn0"] = nn.BatchNorm2d(skip_channels + width)
                L[f"up{i}_conv"], L[f"up{i}_bn1"] = Conv(skip_channels + width, width, 3), nn.BatchNorm2d(width)
                L[f"up{i}_conv1x1"], L[f"up{i}_bn2"] = Conv(width, width, 1), nn.BatchNorm2d(width)
            L["head"] = Conv(width, out_channels, 1)
            self.act = nn.LeakyReLU(0.2)
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

        def forward(self, h):
            L, act, skips = self.layers, self.act, []
            for i in range(scales):
                skips.append(act(L[f"skip{i}_bn"](L[f"skip{i}_conv"](h))))
                h = act(L[f"down{i}_bn1"](L[f"down{i}_conv1"](h)))
                h = act(L[f"down{i}_bn2"](L[f"down{i}_conv2"](h)))
            for i in reversed(range(scales)):
                h = L[f"up{i}_bn0"](torch.cat([skips[i], self.up(h)], dim=1))
                h = act(L[f"up{i}_bn1"](L[f"up{i}_conv"](h)))
                h = act(L[f"up{i}_bn2"](L[f"up{i}_conv1x1"](h)))
            return torch.sigmoid(L["head"](h))

    return SkipNet()


def copy_weights(torch, net, params) -> None:
    """dipjax parameters (Conv2d ``kernel`` HWIO, ``bias``; BatchNorm ``scale``, ``bias``) into the PyTorch net."""
    with torch.no_grad():
        for name, p in params.items():
            module = net.layers[name]
            if "kernel" in p:
                module.conv.weight.copy_(torch.from_numpy(np.asarray(p["kernel"]).transpose(3, 2, 0, 1).copy()))
                module.conv.bias.copy_(torch.from_numpy(np.array(p["bias"])))
            else:
                module.weight.copy_(torch.from_numpy(np.array(p["scale"])))
                module.bias.copy_(torch.from_numpy(np.array(p["bias"])))


def torch_contender(torch, device, params, z, y, width: int, channels_last: bool):
    """A PyTorch DIP step closure on ``device`` (NCHW or channels_last) and the net's forward pass on ``z``."""
    net = torch_skip_net(torch, width, 5, z.shape[-1], y.shape[-1], 4)
    copy_weights(torch, net, params)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(device=device, memory_format=fmt)
    to_t = lambda a: torch.from_numpy(np.asarray(a).transpose(2, 0, 1)[None].copy()).to(device=device,  # noqa: E731
                                                                                          memory_format=fmt)
    zt, yt = to_t(z), to_t(y)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # the forward check in full float32 (GPUs default to TF32 convolutions)
    with torch.no_grad():
        forward = net(zt)[0].permute(1, 2, 0).cpu().numpy()
    torch.backends.cudnn.allow_tf32 = tf32
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    gen = torch.Generator(device=device).manual_seed(0)

    def step():
        z_in = zt + SIGMA_P * torch.randn(zt.shape, generator=gen, device=device).contiguous(memory_format=fmt)
        loss = torch.mean((net(z_in) - yt) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return loss

    return step, forward


# ---------------------------------------------------------------------------------------------------- the bench
def alternate(fns: dict, warmup: int, rounds: int, block: int, settle: int = 0) -> dict:
    """Median seconds of each no-argument callable: ``warmup`` calls of each, then ``rounds`` rounds in which each
    in turn runs ``settle`` untimed calls and ``block`` timed ones. ``{label: {seconds_median, seconds_all}}``."""
    times = {k: [] for k in fns}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    for _ in range(rounds):
        for label, fn in fns.items():
            for _ in range(settle):
                fn()
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t)
    return {k: {"seconds_median": statistics.median(v), "seconds_all": v} for k, v in times.items()}


def bench_size(args, size: int, torch):
    problem, method, state, step = dipjax_setup(size, args.width, args.seed)
    params = jax.device_get(state.params)
    z, y = np.asarray(state.z), np.asarray(problem.y)
    flops = product_flops(jax.make_jaxpr(method.step)(state, problem, jax.random.key(0)).jaxpr)
    t0 = time.perf_counter()
    step = step.lower(state, problem, jax.random.key(0)).compile()
    compile_s = time.perf_counter() - t0
    keys = iter(jax.random.split(jax.random.key(args.seed + 2), 10_000))
    holder = {"state": state}

    def dipjax_step():
        holder["state"], info = step(holder["state"], problem, next(keys))
        jax.block_until_ready(info["loss"])

    contenders = {"dipjax step": dipjax_step}
    row = {"size": size, "parameters": count_params(params), "conv_gflop_per_step": flops / 1e9,
           "dipjax_compile_seconds": compile_s}
    if torch is not None:
        device = torch.device(args.torch_device)
        with jax.default_matmul_precision("float32"):
            ref = np.asarray(method.network.apply({"params": params}, jnp.asarray(z)))
        for label, cl in (("pytorch NCHW", False), ("pytorch channels_last", True)):
            fn, forward = torch_contender(torch, device, params, z, y, args.width, cl)
            diff = float(np.abs(forward - ref).max())
            row[f"forward_max_abs_diff ({label})"] = diff
            if not diff <= 1e-4:
                raise SystemExit(f"{label}'s forward pass differs from dipjax's by {diff:.3g} (> 1e-4): the two "
                                 "networks are not the same, nothing was timed")
            contenders[label] = fn
    for label, timed in alternate(contenders, args.warmup, args.rounds, args.block, args.settle).items():
        med = timed["seconds_median"]
        row[label] = {**timed, "gflops_per_second": flops / med / 1e9}
        print(f"{size}²  {label:24s} {med * 1e3:9.1f} ms/step  {flops / med / 1e9:6.1f} GFLOP/s", flush=True)
    if args.no_engine:
        return finish_row(row)
    engine_steps = args.block if args.quick_engine else args.rounds * args.block
    r = reconstruct(method, problem, jax.random.key(args.seed + 1), engine_steps, progress=False)
    row["dipjax engine"] = {"seconds_per_step": r.seconds_per_step, "steps": engine_steps,
                            "compile_seconds": r.compile_seconds, "strategy": list(r.strategy),
                            "gflops_per_second": flops / r.seconds_per_step / 1e9}
    print(f"{size}²  {'dipjax engine':24s} {r.seconds_per_step * 1e3:9.1f} ms/step (mean of {engine_steps}, "
          f"compile {r.compile_seconds:.1f} s)", flush=True)
    return finish_row(row)


def finish_row(row):
    """Add the ratios to PyTorch channels_last (when it ran)."""
    if "pytorch channels_last" in row:
        cl = row["pytorch channels_last"]["seconds_median"]
        row["ratio_to_channels_last"] = row["dipjax step"]["seconds_median"] / cl
        if "dipjax engine" in row:
            row["engine_ratio_to_channels_last"] = row["dipjax engine"]["seconds_per_step"] / cl
    return row


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    labels = [k for k in ("dipjax step", "dipjax engine", "pytorch NCHW", "pytorch channels_last") if k in rows[0]]
    fig, axes = plt.subplots(1, len(rows), figsize=(3.6 * len(rows), 3.2), squeeze=False)
    for ax, row in zip(axes[0], rows):
        vals = [row[k].get("seconds_median", row[k].get("seconds_per_step")) for k in labels]
        ax.bar(range(len(labels)), vals, color=[f"C{i}" for i in range(len(labels))])
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:.3g} s\n{row[labels[i]]['gflops_per_second']:.0f} GF/s", ha="center", va="bottom",
                    fontsize=7)
        ax.set_xticks(range(len(labels)), [k.replace(" ", "\n", 1) for k in labels], fontsize=7)
        ax.set_ylabel("seconds per step")
        ax.set_ylim(0, max(vals) * 1.3)
        ax.set_title(f"{row['size']}² RGB, width {result['width']}", fontsize=9)
    fig.suptitle(f"one DIP step (Adam) on {result['device']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    apply_default_flags()  # dipjax's XLA options, set before JAX starts (dipjax/xla_flags.py)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="256,512", help="comma-separated image sides (256,512)")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--block", type=int, default=2, help="timed steps each contender runs per round")
    ap.add_argument("--settle", type=int, default=1,
                    help="untimed steps each contender runs first in each round, after the other framework ran")
    ap.add_argument("--quick-engine", action="store_true", help="time the engine over --block steps only")
    ap.add_argument("--no-engine", action="store_true", help="do not time the engine (saves its compilation)")
    ap.add_argument("--no-torch", action="store_true", help="time dipjax alone even if PyTorch is importable")
    ap.add_argument("--torch-device", default=None, help="cuda when PyTorch sees a GPU, else cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        ap.error(f"--sizes takes comma-separated integers, got {args.sizes!r}")
    if any(s % 32 or s < 64 for s in sizes) or min(args.width, args.rounds, args.block) < 1 or args.warmup < 0:
        ap.error("sizes must be multiples of 32 from 64 (5 scales), width, rounds and block positive")
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch is not importable: timing dipjax alone", flush=True)
    if torch is not None and args.torch_device is None:
        args.torch_device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = [bench_size(args, s, torch) for s in sizes]
    result = {"backend": jax.default_backend(), "device": jax.devices()[0].device_kind, "jax": jax.__version__,
              "torch": None if torch is None else torch.__version__,
              "torch_device": args.torch_device, "torch_threads": None if torch is None else torch.get_num_threads(),
              "cpu_count": os.cpu_count(), "machine": platform.machine(), "width": args.width,
              "xla_flags": os.environ.get("XLA_FLAGS", ""),
              "command": " ".join(["python", "experiments/bench_step.py"] + (argv if argv is not None else sys.argv[1:])),
              "protocol": {"warmup": args.warmup, "rounds": args.rounds, "block": args.block, "settle": args.settle,
                           "sigma_p": SIGMA_P, "lr": 0.01}, "rows": rows}
    if torch is not None:
        result["checks"] = {"dipjax_step_not_slower_than_channels_last": {
            "rule": "dipjax step time / PyTorch channels_last ≤ 1 at every size",
            "value": [row["ratio_to_channels_last"] for row in rows],
            "pass": all(row["ratio_to_channels_last"] <= 1 for row in rows)}}
    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "metrics.json"), result)
    plot(result, os.path.join(args.out, "figure.png"))
    print(f"wrote {args.out}/metrics.json and figure.png")


if __name__ == "__main__":
    main()
