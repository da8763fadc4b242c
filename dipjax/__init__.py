"""dipjax: Deep Image Prior methods and their theory in JAX/Flax.

The data path (see README): ``Problem`` (operator, y, x_true) → ``method.init`` → ``method.step`` ×N (compiled by
:func:`dipjax.engine.reconstruct`) → ``method.estimate`` → ``Result``.
"""

__version__ = "0.1.0"
