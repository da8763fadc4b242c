"""dipjax.theory: NTK, filter-recursion and Burer–Monteiro tools (installed from the top-level ``theory/`` folder).

Empty in this release: the theory package is tracked as its own issue and nothing here is implemented yet.
"""
