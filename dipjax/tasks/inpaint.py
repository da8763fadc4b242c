"""Inpainting: ``y = m ⊙ x + n`` with a random pixel mask, aSeqDIP's centred box or a text overlay."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from dipjax.operators import Inpainting, box_mask, random_mask, text_mask
from dipjax.tasks.base import TaskConfig, option, register_task, require

#: aSeqDIP's inpainting box: 190 pixels on a 512² image (``Aseq_DIP_inpainting.py``), scaled to the image size.
BOX_FRACTION = 190 / 512


@register_task
@dataclasses.dataclass(frozen=True)
class InpaintConfig(TaskConfig):
    name: ClassVar[str] = "inpaint"
    summary: ClassVar[str] = "y = m ⊙ x + n: a Bernoulli pixel mask (`--keep`), a centred box (190/512 of the side) or text"

    mask: str = option("random", "inpainting mask", choices=("random", "box", "text"))
    keep: float = option(0.5, "fraction of observed pixels (random mask)")

    def check(self):
        require(0 < self.keep <= 1, "keep", f"must be in (0, 1], got {self.keep}")

    def build_operator(self, key, shape):
        h, w, c = shape
        if self.mask == "random":
            mask = random_mask(key, h, w, self.keep)
        elif self.mask == "box":
            mask = box_mask(h, w, max(1, int(round(min(h, w) * BOX_FRACTION))))
        else:
            mask = text_mask(h, w)
        return Inpainting.from_mask(mask, c)
