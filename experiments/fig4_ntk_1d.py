"""Survey Figure 4: a 1-D CNN trained by gradient descent on a noisy square signal, beside the NTK recursion (eq. 6).

    python experiments/fig4_ntk_1d.py            # n = 128, width 256, 10000 GD steps, 15 hidden layers for the
                                                 # deep condition number (about 10 min on 2 CPU cores)
    python experiments/fig4_ntk_1d.py --quick    # n = 64, 3000 steps, 7 hidden layers (about 1 min)

What it does:
1. A piecewise-constant ("square") signal x of length n in [0, 1], y = x + N(0, σ²), σ = 0.1.
2. A 3-layer 1-D CNN (``stax``: Conv(256, 3, CIRCULAR) → ReLU → Conv(256) → ReLU → Conv(1), NTK parameterisation,
   He scale W_std = √2, b_std = 0.1). Its fixed input z is smooth: cos and sin of the first four frequencies
   (8 channels), the 1-D analogue of DIP's meshgrid input, periodic to match the circular padding. (With white-noise
   inputs this shallow CNN's kernel has no low-frequency bias and the PSNR never rises above the noisy input's.)
3. Its empirical NTK K at initialisation (float64). Real training: plain gradient descent on ½‖f_θ(z) − y‖² with
   η = 1/λ_max(K), in float32, every step recorded, run well past the PSNR peak into overfitting. Beside it eq. (6)
   with the same K, η and f_0 in closed form (float64).
4. The spectrum of K, and condition numbers of the empirical and the infinite-width NTK of the same architecture
   with 3 layers and with 15 hidden layers (16 convolutions), from the computed spectra, at the training's He scale
   and at the scale of PyTorch's default conv init (variance 1/(3 fan_in): W_std = 1/√3, b_std = 0.02), which is
   what a DIP user's ``nn.Conv1d`` gets.
5. ES-WMV (window 50 steps) on both trajectories.

Writes experiments/results/fig4_ntk_1d/{figure.png, metrics.json}. Every plotted number is in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax
import numpy as np

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from dipjax.stopping import windowed_moving_variance  # noqa: E402
from dipjax.theory import empirical_ntk, filter_recursion, stax, train_gradient_descent  # noqa: E402
from dipjax.theory.early_stopping import predicted_wmv, wmv_detection  # noqa: E402
from dipjax.xla_flags import apply_default_flags  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "results", "fig4_ntk_1d")


def square_signal(n: int) -> np.ndarray:
    """Piecewise-constant test signal with four levels (values in [0.1, 0.9])."""
    t = np.arange(n) / n
    return np.select([t < 0.2, t < 0.45, t < 0.6, t < 0.85], [0.2, 0.8, 0.4, 0.9], 0.1)


def fourier_input(n: int, frequencies: int = 4) -> np.ndarray:
    """``(1, n, 2·frequencies)``: cos and sin of ``2π k t``, k = 1..frequencies, t = i/n."""
    t = np.arange(n) / n
    return np.stack([f(2 * np.pi * k * t) for k in range(1, frequencies + 1) for f in (np.cos, np.sin)], -1)[None]


def cnn(width: int, hidden_layers: int, w_std: float, b_std: float):
    """``hidden_layers`` conv+ReLU blocks of ``width`` channels, then a 1-channel conv (all filter 3, circular)."""
    layers = []
    for _ in range(hidden_layers):
        layers += [stax.Conv(width, (3,), padding="CIRCULAR", W_std=w_std, b_std=b_std), stax.Relu()]
    layers.append(stax.Conv(1, (3,), padding="CIRCULAR", W_std=w_std, b_std=b_std))
    return stax.serial(*layers)


def psnr(f, x):
    return 10 * np.log10(1.0 / np.mean((np.asarray(f) - x) ** 2, axis=-1))


def ntk_of(width, hidden, z, key, w_std, b_std):
    """Empirical NTK at initialisation, the flat apply, the initial parameters and the infinite-width NTK."""
    init_fn, apply_fn, kernel_fn = cnn(width, hidden, w_std, b_std)
    _, params = init_fn(key, z.shape)
    apply = lambda p, zz: apply_fn(p, zz)[0, :, 0]  # noqa: E731
    return empirical_ntk(apply, params, z), apply, params, kernel_fn(z, None, "ntk")[0, 0]


def cond(kernel) -> tuple[np.ndarray, float]:
    eig = np.sort(np.linalg.eigvalsh(np.asarray(kernel)))[::-1]
    return eig, float(eig[0] / eig[-1])


def _rounded(obj):
    """Floats to 7 significant digits (the JSON of every plotted number stays readable and small)."""
    if isinstance(obj, float):
        return float(f"{obj:.7g}")
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def main(argv=None):
    """Runs in float64 (the kernel's spectrum spans many decades) without changing the caller's x64 setting."""
    apply_default_flags()  # dipjax's XLA options, set before JAX starts (dipjax/xla_flags.py)
    with jax.enable_x64(True):
        return _main(argv)


def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None, help="signal length (128; 64 with --quick)")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--steps", type=int, default=None, help="GD steps (10000; 3000 with --quick)")
    ap.add_argument("--deep", type=int, default=None,
                    help="hidden layers of the deep net (15; 7 with --quick; 0 skips the deep condition numbers)")
    ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--w-std", type=float, default=2 ** 0.5)
    ap.add_argument("--b-std", type=float, default=0.1)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)
    n = args.n or (64 if args.quick else 128)
    steps = args.steps or (3000 if args.quick else 10000)
    deep = args.deep if args.deep is not None else (7 if args.quick else 15)
    t0 = time.time()

    key = jax.random.PRNGKey(args.seed)
    k_noise, _, k_net, k_deep = jax.random.split(key, 4)  # the second key is unused (the input is deterministic)
    x = square_signal(n)
    y = x + args.sigma * np.asarray(jax.random.normal(k_noise, (n,), jax.numpy.float64))
    z = jax.numpy.asarray(fourier_input(n))

    kernel, apply, params, kernel_inf = ntk_of(args.width, 2, z, k_net, args.w_std, args.b_std)
    eig, cond_3 = cond(kernel)
    eta = 1.0 / eig[0]
    f32 = lambda tree: jax.tree_util.tree_map(lambda a: a.astype(np.float32), tree)  # noqa: E731
    t_train = time.time()
    outputs, _ = train_gradient_descent(apply, f32(params), f32(z), np.eye(n, dtype=np.float32),
                                        y.astype(np.float32), np.float32(eta), steps)
    outputs = np.asarray(outputs, np.float64)
    t_train = time.time() - t_train
    rec = filter_recursion(kernel, np.eye(n), eta)
    iters = np.arange(steps + 1)
    wmv_ntk, ntk_traj = predicted_wmv(rec, y, steps, args.window, outputs[0])
    psnr_train, psnr_ntk = psnr(outputs, x), psnr(ntk_traj, x)
    gap = np.abs(psnr_train - psnr_ntk)

    torch_w, torch_b = 3 ** -0.5, 0.02
    torch_3, _, _, torch_3_inf = ntk_of(args.width, 2, z, k_net, torch_w, torch_b)
    conds = {"pytorch_scale": {"w_std": torch_w, "b_std": torch_b, "cond_3_layers": cond(torch_3)[1],
                               "cond_3_layers_infinite_width": cond(torch_3_inf)[1]}}
    deep_eig = torch_deep_eig = None
    if deep:
        deep_kernel, _, _, deep_inf = ntk_of(args.width, deep, z, k_deep, args.w_std, args.b_std)
        deep_eig, conds[f"cond_{deep}_hidden"] = cond(deep_kernel)
        conds[f"cond_{deep}_hidden_infinite_width"] = cond(deep_inf)[1]
        torch_deep, _, _, torch_deep_inf = ntk_of(args.width, deep, z, k_deep, torch_w, torch_b)
        torch_deep_eig, conds["pytorch_scale"][f"cond_{deep}_hidden"] = cond(torch_deep)
        conds["pytorch_scale"][f"cond_{deep}_hidden_infinite_width"] = cond(torch_deep_inf)[1]
    wmv_train = windowed_moving_variance(outputs, args.window)

    metrics = {
        "command": "python experiments/fig4_ntk_1d.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])),
        "n": n, "width": args.width, "sigma": args.sigma, "eta": eta, "steps": steps, "seed": args.seed,
        "hidden_layers_deep": deep, "kernel_dtype": "float64",
        "iterations": iters.tolist(),
        "psnr_training": psnr_train.tolist(),
        "psnr_ntk": psnr_ntk.tolist(),
        "psnr_noisy": float(psnr(y, x)),
        "peak_training": {"iteration": int(np.argmax(psnr_train)), "psnr": float(psnr_train.max())},
        "peak_ntk": {"iteration": int(np.argmax(psnr_ntk)), "psnr": float(psnr_ntk.max())},
        "final_training": float(psnr_train[-1]), "final_ntk": float(psnr_ntk[-1]),
        "max_abs_psnr_gap_db": float(gap.max()),
        "max_abs_psnr_gap_db_through_peak": float(gap[: int(np.argmax(psnr_train)) + 1].max()),
        "first_iteration_gap_above_1db": int(np.argmax(gap > 1.0)) if (gap > 1.0).any() else None,
        "ntk_singular_values": eig.tolist(),
        "ntk_singular_values_deep": None if deep_eig is None else deep_eig.tolist(),
        "ntk_singular_values_deep_pytorch_scale": None if torch_deep_eig is None else torch_deep_eig.tolist(),
        "cond_3_layers": cond_3,
        "cond_3_layers_infinite_width": cond(kernel_inf)[1],
        **conds,
        "w_std": args.w_std, "b_std": args.b_std, "input": "cos/sin of frequencies 1-4 (8 channels)",
        "training_dtype": "float32", "training_seconds": t_train,
        "wmv_window": args.window,
        "wmv_training": wmv_train.tolist(), "wmv_ntk": wmv_ntk.tolist(),
        "wmv_detected_training": wmv_detection(wmv_train, args.window),
        "wmv_detected_ntk": wmv_detection(wmv_ntk, args.window),
        "seconds": time.time() - t0,
    }
    metrics.setdefault("cond_15_hidden", None)  # only a run with --deep 15 (the default) computes it

    os.makedirs(args.out, exist_ok=True)
    fig, ax = plt.subplots(1, 4, figsize=(19, 4))
    ax[0].plot(x, "k", lw=2, label="x")
    ax[0].plot(y, ".", ms=3, color="0.6", label="y")
    ax[0].plot(outputs[metrics["peak_training"]["iteration"]], label="GD at its peak")
    ax[0].plot(outputs[-1], lw=0.8, label=f"GD at {steps}")
    ax[0].set_title("signal")
    ax[0].legend(fontsize=8)
    ax[1].plot(iters, psnr_train, label=f"GD, width {args.width}")
    ax[1].plot(iters, psnr_ntk, "--", label="NTK recursion (6)")
    ax[1].axhline(metrics["psnr_noisy"], color="0.6", lw=0.8, label="noisy input")
    ax[1].set_xscale("symlog", linthresh=10)
    ax[1].set_xlim(left=0)
    ax[1].set_xlabel("iteration")
    ax[1].set_ylabel("PSNR (dB)")
    ax[1].set_title(f"max |gap| {gap.max():.2f} dB ({metrics['max_abs_psnr_gap_db_through_peak']:.2f} dB through "
                    f"the peak)")
    ax[1].legend(fontsize=8)
    ax[2].semilogy(eig / eig[0], label=f"3 layers, cond {metrics['cond_3_layers']:.2e}")
    if deep:
        ax[2].semilogy(deep_eig / deep_eig[0], label=f"{deep} hidden, cond {metrics[f'cond_{deep}_hidden']:.2e}")
        ax[2].semilogy(torch_deep_eig / torch_deep_eig[0], ":",
                       label=f"{deep} hidden, PyTorch-default scale, cond "
                             f"{metrics['pytorch_scale'][f'cond_{deep}_hidden']:.2e}")
    ax[2].set_xlabel("index")
    ax[2].set_title("NTK singular values (normalised)")
    ax[2].legend(fontsize=8)
    w_iters = iters[args.window - 1:]
    ax[3].semilogy(w_iters, wmv_train, label="WMV of GD")
    ax[3].semilogy(w_iters, wmv_ntk, "--", label="WMV predicted by (6)")
    ax[3].set_xscale("log")
    ax[3].set_xlabel("iteration (window end)")
    ax[3].set_title(f"ES-WMV, W = {args.window}")
    ax[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "figure.png"), dpi=110)
    with open(os.path.join(args.out, "metrics.json"), "w") as fh:
        json.dump(_rounded(metrics), fh)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}, indent=1))
    return metrics


if __name__ == "__main__":
    main()
