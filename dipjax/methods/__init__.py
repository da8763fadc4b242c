"""Reconstruction methods on the ``init / step / estimate`` protocol (see :mod:`dipjax.methods.base`) and their
registry with per-task published defaults (:mod:`dipjax.methods.registry`).

One module per method of the survey: :class:`DIP` (eq. 2), :class:`TVDIP` (eq. 12), :class:`SelfGuidedDIP`
(eq. 14), :class:`ASeqDIP` (eq. 15, with the diffusion-purifier hook), :class:`DeepDecoderFit` and
:class:`ConvDecoderFit` (§3.3), :class:`OptimalEyeSurgeon` = :class:`OESMaskLearning` + :class:`OES` (eq. 17),
:class:`DOP` (eq. 18), :class:`DRP` (eq. 20), :class:`DeepRED` (§3.4) and :class:`ReferenceGuidedDIP`. Each module
registers itself (every module of this package is imported here, so adding a method is adding a module). Early
stopping (ES-WMV/EMV, eq. 16) is not a method but a monitor that runs beside any of them (:mod:`dipjax.stopping`).
"""

import importlib
import pkgutil

# Imported in the survey's order, which is the registry's (and the CLI's and README's) order of methods.
from dipjax.methods.dip import DIP, DIPState, random_input  # noqa: I001
from dipjax.methods.tv_dip import TVDIP
from dipjax.methods.self_guided import SelfGuidedDIP
from dipjax.methods.aseq_dip import ASeqDIP
from dipjax.methods.decoders import ConvDecoderFit, DeepDecoderFit
from dipjax.methods.oes import OES, OESMask, OESMaskLearning, OptimalEyeSurgeon, learned_mask, oes_network
from dipjax.methods.dop import DOP
from dipjax.methods.drp import DRP
from dipjax.methods.deepred import DeepRED
from dipjax.methods.reference_guided import ReferenceGuidedDIP
from dipjax.methods.base import Method, StaticArray, fitting_step
from dipjax.methods.registry import (METHODS, MethodSpec, Option, Preset, build_method, default_steps, describe,
                                     get_method, preset, register_method, resolve_preset)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Method", "StaticArray", "fitting_step", "DIP", "DIPState", "random_input", "TVDIP", "SelfGuidedDIP",
           "ASeqDIP", "DeepDecoderFit", "ConvDecoderFit", "OptimalEyeSurgeon", "OESMaskLearning", "OES", "OESMask",
           "learned_mask", "oes_network", "DOP", "DRP", "DeepRED", "ReferenceGuidedDIP", "METHODS", "MethodSpec",
           "Option", "Preset", "preset", "register_method", "get_method", "build_method", "default_steps",
           "resolve_preset", "describe"]
