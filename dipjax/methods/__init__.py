"""Reconstruction methods on the ``init / step / estimate`` protocol (see :mod:`dipjax.methods.base`).

One module per method of the survey: :class:`DIP` (eq. 2), :class:`TVDIP` (eq. 12), :class:`SelfGuidedDIP`
(eq. 14), :class:`ASeqDIP` (eq. 15, with the diffusion-purifier hook), :class:`DeepDecoderFit` and
:class:`ConvDecoderFit` (§3.3), :class:`OESMaskLearning` + :class:`OES` (eq. 17), :class:`DOP` (eq. 18),
:class:`DRP` (eq. 20), :class:`DeepRED` (§3.4) and :class:`ReferenceGuidedDIP`. Early stopping (ES-WMV/EMV, eq. 16)
is not a method but a stopper that runs beside any of them (:mod:`dipjax.stopping`).
"""

from dipjax.methods.aseq_dip import ASeqDIP
from dipjax.methods.base import Method, StaticArray
from dipjax.methods.decoders import ConvDecoderFit, DeepDecoderFit
from dipjax.methods.deepred import DeepRED
from dipjax.methods.dip import DIP, DIPState, random_input
from dipjax.methods.dop import DOP
from dipjax.methods.drp import DRP
from dipjax.methods.oes import OES, OESMask, OESMaskLearning, learned_mask, oes_network
from dipjax.methods.reference_guided import ReferenceGuidedDIP
from dipjax.methods.self_guided import SelfGuidedDIP
from dipjax.methods.tv_dip import TVDIP

__all__ = ["Method", "StaticArray", "DIP", "DIPState", "random_input", "TVDIP", "SelfGuidedDIP", "ASeqDIP",
           "DeepDecoderFit", "ConvDecoderFit", "OESMaskLearning", "OES", "OESMask", "learned_mask", "oes_network",
           "DOP", "DRP", "DeepRED", "ReferenceGuidedDIP"]
