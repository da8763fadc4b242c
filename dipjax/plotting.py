"""Figures written by the CLI and the experiment scripts (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import numpy as np


def plot_curve(path: str, history: dict, title: str = "", psnr_input: float | None = None,
               iter_stop: int | None = None) -> None:
    """PSNR (if known) and loss over iterations; marks the oracle peak, the input PSNR and a stopping point."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    has_psnr = "psnr" in history
    fig, axes = plt.subplots(1, 2 if has_psnr else 1, figsize=(10 if has_psnr else 5, 3.6), squeeze=False)
    axes = axes[0]
    it = np.arange(1, len(history["loss"]) + 1)
    ax = axes[-1]
    ax.semilogy(it, history["loss"], lw=1)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (mean squared residual)")
    ax.grid(alpha=0.3)
    if has_psnr:
        ax = axes[0]
        p = np.asarray(history["psnr"])
        ax.plot(it, p, lw=1, label="PSNR of the estimate")
        if np.isfinite(p).any():  # a run that diverged at once has no finite PSNR
            i = int(np.nanargmax(p))
            ax.plot(it[i], p[i], "o", color="C3", label=f"peak (oracle) {p[i]:.2f} dB @ {it[i]}")
        if psnr_input is not None:
            ax.axhline(psnr_input, color="gray", ls="--", lw=1, label=f"input {psnr_input:.2f} dB")
        if iter_stop is not None:
            ax.axvline(iter_stop, color="C2", ls=":", label=f"stop @ {iter_stop}")
        ax.set_xlabel("iteration")
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    from dipjax.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
