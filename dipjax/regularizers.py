"""Image regularisers and residual norms shared by the methods.

* :func:`total_variation`: anisotropic ``Σ |D_h x| + |D_v x|`` or isotropic ``Σ sqrt(D_h x² + D_v x² + ε)`` with
  forward differences (no wrap-around), summed over channels; ``reduction="mean"`` divides by the number of entries
  of ``x`` (DRP's ``TV1``, ``util.py`` of sun-umn/Deep-Random-Projector), ``"sum"`` does not.
* :func:`residual_norm`: the data-fidelity norms the DIP family uses, normalised by the number of entries so that a
  weight carries over between image sizes: ``"l2sq"`` mean squared error (``torch.nn.MSELoss``), ``"l2"`` root mean
  squared error (= ``‖r‖₂ / √n``: the unsquared norms of aSeqDIP's CT/MRI scripts and of DRP's RMSE), ``"l1"`` mean
  absolute error; ``"euclidean"`` the unnormalised ``‖r‖₂`` (``torch.linalg.norm``) and ``"euclidean_sq"`` its
  square ``Σ |r|²`` (a ``.pow(2).sum()``). Complex residuals use their modulus.
"""

from __future__ import annotations

import jax.numpy as jnp

#: Residual norms of the two-term DIP objectives (``residual_norm``): means over the entries, or ``euclidean`` and
#: ``euclidean_sq``, the unnormalised ``‖r‖₂`` and ``‖r‖₂²``. The means weigh a data term and an image term by their
#: different numbers of entries.
NORMS = ("l2sq", "l2", "l1", "euclidean", "euclidean_sq")
TV_KINDS = ("anisotropic", "isotropic")


def finite_differences(x):
    """Forward differences of ``(..., H, W, C)`` along height and width: ``(x[i+1, j] − x[i, j], x[i, j+1] − x[i, j])``
    with shapes ``(..., H−1, W, C)`` and ``(..., H, W−1, C)``."""
    return x[..., 1:, :, :] - x[..., :-1, :, :], x[..., :, 1:, :] - x[..., :, :-1, :]


def total_variation(x, kind: str = "anisotropic", reduction: str = "mean", eps: float = 1e-8):
    """Total variation of one image ``(H, W, C)`` (survey §3.1, TV-DIP; Liu et al. ICASSP 2019)."""
    dv, dh = finite_differences(x)
    if kind == "anisotropic":
        tv = jnp.sum(jnp.abs(dv)) + jnp.sum(jnp.abs(dh))
    elif kind == "isotropic":
        # Both differences at the pixels where both exist (the last row/column use the one that exists).
        dv_full = jnp.pad(dv, [(0, 0)] * (x.ndim - 3) + [(0, 1), (0, 0), (0, 0)])
        dh_full = jnp.pad(dh, [(0, 0)] * (x.ndim - 3) + [(0, 0), (0, 1), (0, 0)])
        tv = jnp.sum(jnp.sqrt(dv_full**2 + dh_full**2 + eps))
    else:
        raise ValueError(f"unknown TV kind {kind!r}; expected one of {TV_KINDS}")
    if reduction == "mean":
        return tv / x.size
    if reduction == "sum":
        return tv
    raise ValueError(f"unknown reduction {reduction!r}; expected 'mean' or 'sum'")


def residual_norm(r, norm: str = "l2sq"):
    """``mean |r|²`` (``l2sq``), ``sqrt(mean |r|²)`` (``l2``), ``mean |r|`` (``l1``), ``sqrt(Σ |r|²)``
    (``euclidean``, PyTorch's ``torch.linalg.norm``) or ``Σ |r|²`` (``euclidean_sq``) of a real or complex array.

    In ``D(A x, y) + λ R(x, z)`` the means divide the data term by the number of measurements and the image term by
    the number of image entries, so where the two differ (MRI's coils × k-space, CT's sinogram, super-resolution) λ
    weighs differently than with unnormalised norms: a method whose authors used ``torch.linalg.norm`` needs
    ``euclidean`` for their λ to mean the same."""
    sq = jnp.real(r * jnp.conj(r))
    if norm == "euclidean":
        return jnp.sqrt(jnp.sum(sq) + 1e-20)
    if norm == "euclidean_sq":
        return jnp.sum(sq)
    if norm == "l2sq":
        return jnp.mean(sq)
    if norm == "l2":
        return jnp.sqrt(jnp.mean(sq) + 1e-20)
    if norm == "l1":
        return jnp.mean(jnp.sqrt(sq + 1e-20)) if jnp.iscomplexobj(r) else jnp.mean(jnp.abs(r))
    raise ValueError(f"unknown norm {norm!r}; expected one of {NORMS}")
