"""Reconstruction methods on the ``init / step / estimate`` protocol (see :mod:`dipjax.methods.base`)."""

from dipjax.methods.base import Method
from dipjax.methods.dip import DIP, DIPState, random_input

#: Methods by their command-line name.
METHODS = {"dip": DIP}

__all__ = ["Method", "DIP", "DIPState", "random_input", "METHODS"]
