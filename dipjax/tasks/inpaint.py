"""Inpainting: ``y = m ⊙ x + n`` with a random pixel mask, aSeqDIP's centred box or a text overlay."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from dipjax.operators import Inpainting, box_mask, random_mask, text_mask
from dipjax.tasks.base import TaskConfig, option, register_task, require

#: aSeqDIP's inpainting box: 190 pixels on a 512² image (``Aseq_DIP_inpainting.py``) as a fraction of the image area.
ASEQ_DIP_HOLE_RATIO = (190 / 512) ** 2


@register_task
@dataclasses.dataclass(frozen=True)
class InpaintConfig(TaskConfig):
    name: ClassVar[str] = "inpaint"
    summary: ClassVar[str] = ("y = m ⊙ x + n: a Bernoulli pixel mask (`--keep`), a centred box hole (`--hole-ratio` of "
                              "the area) or text")

    mask: str = option("random", "inpainting mask", choices=("random", "box", "text"))
    keep: float = option(0.5, "fraction of observed pixels (random mask)")
    hole_ratio: float = option(ASEQ_DIP_HOLE_RATIO, "area of the box hole / image area (box mask; aSeqDIP: "
                               "(190/512)²; the survey's Fig. 5: 0.25)")

    def check(self):
        require(0 < self.keep <= 1, "keep", f"must be in (0, 1], got {self.keep}")
        require(0 < self.hole_ratio < 1, "hole_ratio", f"must be in (0, 1), got {self.hole_ratio}")

    def build_operator(self, key, shape):
        h, w, c = shape
        if self.mask == "random":
            mask = random_mask(key, h, w, self.keep)
        elif self.mask == "box":
            side = min(max(1, int(round((self.hole_ratio * h * w) ** 0.5))), min(h, w) - 1)
            mask = box_mask(h, w, side)
        else:
            mask = text_mask(h, w)
        return Inpainting.from_mask(mask, c)
