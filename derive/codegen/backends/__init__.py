"""Backends: how generated code is spelled.

A backend is a module with an operation table (``OPS``: each neutral operation of the lines as
a call), the operations that may write over an operand (``IN_PLACE``; empty where arrays are
immutable, and the buffer-reuse pass is then not run), how an operand is seen along two axes
(``VIEWS``), ``line()``, ``calls()`` and ``runtime()``, the lines that make the shifted logits
(``SHIFTED``, ``SHIFT_CODE``) and that quiet a function's floating-point warnings (``QUIET``),
and its runtime and templates as real Python beside it: the catalogue's public functions
(``CATALOGUE``) and header (``HEADER``), and a user's loss's (``OWN``).  :mod:`.numpy` is the one
there is.
"""
