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
        _label_psnr_axes(ax)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def _label_psnr_axes(ax) -> None:
    """PSNR against iteration: axis labels, grid and legend."""
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


def _save(fig, path: str) -> None:
    """Lay out, write atomically as PNG (:func:`~dipjax.files.atomic_path`) and close."""
    import matplotlib.pyplot as plt

    from dipjax.files import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def plot_psnr_band(path: str, curves: np.ndarray, title: str = "") -> None:
    """Every image's PSNR curve (thin) and their mean ± std band, iterations 1…T."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    it = np.arange(1, curves.shape[1] + 1)
    mean, std = np.nanmean(curves, axis=0), np.nanstd(curves, axis=0, ddof=1) if len(curves) > 1 else 0 * curves[0]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for c in curves:
        ax.plot(it, c, lw=0.5, color="gray", alpha=0.5)
    ax.plot(it, mean, color="C0", lw=1.5, label=f"mean of {len(curves)} images")
    ax.fill_between(it, mean - std, mean + std, color="C0", alpha=0.25, label="± 1 std")
    _label_psnr_axes(ax)
    ax.set_title(title, fontsize=10)
    _save(fig, path)
