"""Inpainting: a pixel mask ``y = m ⊙ x`` and the masks the DIP literature uses (random, box, text overlay)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from dipjax.operators.base import LinearOperator, check_image_shape


@struct.dataclass
class Inpainting(LinearOperator):
    """``y = m ⊙ x`` with a 0/1 mask ``m`` of shape ``(H, W, 1)`` (shared by channels) or ``(H, W, C)``.

    The output keeps the image shape (missing pixels are zeros), as in the DIP inpainting notebook, so the data
    term ``||m ⊙ (f(z) - x)||²`` is the masked MSE. The mask is a pytree leaf: a batch may carry one mask per image.
    """

    mask: jax.Array
    in_shape: tuple[int, ...] = struct.field(pytree_node=False)

    def __call__(self, x):
        return x * self.mask

    def adjoint(self, y):
        return y * self.mask

    def init_image(self, y):
        """The masked image ``m ⊙ y`` (missing pixels 0), as the DIP inpainting notebook shows it."""
        return y * self.mask

    @classmethod
    def from_mask(cls, mask, channels: int) -> "Inpainting":
        mask = jnp.asarray(mask, jnp.float32)
        if mask.ndim == 2:
            mask = mask[..., None]
        if mask.ndim != 3 or mask.shape[-1] not in (1, channels):
            raise ValueError(f"inpainting mask must be (H, W), (H, W, 1) or (H, W, {channels}), got {mask.shape}")
        return cls(mask=mask, in_shape=check_image_shape((mask.shape[0], mask.shape[1], channels)))


def random_mask(key, height: int, width: int, keep: float) -> jax.Array:
    """Bernoulli pixel mask: each pixel observed with probability ``keep`` (shape ``(H, W, 1)``)."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"fraction of observed pixels must be in (0, 1], got {keep}")
    return jax.random.bernoulli(key, keep, (height, width, 1)).astype(jnp.float32)


def box_mask(height: int, width: int, box: int, center: tuple[int, int] | None = None) -> jax.Array:
    """A square hole of side ``box`` pixels (aSeqDIP's inpainting uses a centred 190-px box on 512² images)."""
    if not 0 < box < min(height, width):
        raise ValueError(f"box side must be between 1 and {min(height, width) - 1} pixels, got {box}")
    cy, cx = center if center is not None else (height // 2, width // 2)
    y0, x0 = max(cy - box // 2, 0), max(cx - box // 2, 0)
    mask = np.ones((height, width, 1), np.float32)
    mask[y0 : y0 + box, x0 : x0 + box] = 0.0
    return jnp.asarray(mask)


_TEXT = ("The deep image prior fits a random network to one corrupted image; "
         "its architecture is the only prior it needs. ")


@functools.lru_cache(maxsize=16)
def _text_mask_np(height: int, width: int, fontsize: float) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fig.patch.set_facecolor("white")
    line_height = fontsize * 1.4 / height  # in figure coordinates (1 pt = 1 px at dpi 72; we use dpi 100)
    lines = int(1 / line_height)
    words = (_TEXT * 50).split()
    for i in range(lines):
        start = (i * 7) % len(words)
        fig.text(0.0, 1 - (i + 0.8) * line_height, " ".join(words[start : start + 30]),
                 fontsize=fontsize * 72 / 100, color="black", family="DejaVu Sans", weight="bold")
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())[:height, :width, 0]
    return (rgba > 128).astype(np.float32)[..., None]


def text_mask(height: int, width: int, fontsize: float | None = None) -> jax.Array:
    """A text overlay mask (0 under the glyphs), drawn with matplotlib's bundled font: no file or download."""
    fontsize = float(fontsize if fontsize is not None else max(8.0, height / 12))
    return jnp.asarray(_text_mask_np(int(height), int(width), fontsize))
