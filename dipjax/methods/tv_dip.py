"""TV-DIP (Liu, Sun, Xu, Kamilov, ICASSP 2019; survey §3.1, eq. (12)):

    θ* = argmin_θ  ‖A f_θ(z) − y‖² + λ TV(f_θ(z)),    x* = f_θ*(z)

DIP with a total-variation penalty on the output, optimised by Adam through the (sub)differentiable TV. No official
code exists (METHODS.md §8a), so the TV form is a field: ``"anisotropic"`` (Σ |D_h x| + |D_v x|) or
``"isotropic"`` (Σ √(D_h x² + D_v x² + ε)). The data term is DIP's mean squared error and the TV is divided by the
number of entries (DRP's ``TV1`` convention), so λ does not depend on the image size. The paper's λ is not verified;
the default ``tv_weight = 0.01`` is dipjax's choice for Gaussian denoising at σ = 25 (the gradient of λ·TV per pixel
is then a few percent of the data term's at the noise level), not a published value.
"""

from __future__ import annotations

import dataclasses

from dipjax.methods import dip
from dipjax.methods.dip import DIP
from dipjax.methods.registry import MethodSpec, Option, register_method
from dipjax.regularizers import TV_KINDS, total_variation
from dipjax.validation import require, require_finite


@dataclasses.dataclass(frozen=True)
class TVDIP(DIP):
    """DIP + λ·TV (``tv_kind`` anisotropic or isotropic)."""

    tv_weight: float = 0.01
    tv_kind: str = "anisotropic"
    name: str = "tv_dip"

    def __post_init__(self):
        super().__post_init__()
        require_finite(self, "tv_weight")
        require(self.tv_weight >= 0, "tv_weight", f"must be non-negative, got {self.tv_weight}")
        require(self.tv_kind in TV_KINDS, "tv_kind", f"must be one of {', '.join(TV_KINDS)}, got {self.tv_kind!r}")

    def objective(self, x, problem):
        return super().objective(x, problem) + self.tv_weight * total_variation(x, self.tv_kind)


TV_WEIGHT = Option("tv-weight", "tv_weight", "weight λ of the total-variation penalty")

#: DIP's table (no TV-DIP code exists; the budgets and σ_p are the DIP notebooks').
register_method(MethodSpec("tv_dip", "TV-DIP", TVDIP, dip.dip_network, dip.PRESETS,
                           (dip.LR, dip.INPUT_NOISE, dip.EMA, TV_WEIGHT)))
