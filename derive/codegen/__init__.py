"""Stage 6 of the pipeline: generated code, from the formulas of checked derivations.

The stages, one module each, in the order a formula goes through them:

- :mod:`.ir`: array formulas and the lines that compute them; no backend is spelled there;
- :mod:`.to_array`: an indexed formula as an array formula (free index as the last axis, Σ as a
  reduction, δ, labels);
- :mod:`.rewrites`: named rewrites as objects, in ordered collections (:mod:`.rewrites.stability`,
  :mod:`.rewrites.labels`), applied by one ``optimize``;
- :mod:`.lines`: three-address lines of backend-neutral operations, and buffer reuse as a pass
  of its own, run only where the backend may write in place;
- :mod:`.lower`: the passes, top to bottom;
- :mod:`.backends`: a backend is an operation table, its runtime helpers (real Python, emitted
  with :mod:`inspect`) and its templates (``numpy.py``, ``numpy_runtime.py``,
  ``numpy_functions.py``, ``numpy_scaffold.py``, ``numpy_own.py``);
- :mod:`.scaffold`: the fixed parts of public functions, real Python with declared holes;
- :mod:`.spec`: one path for every module: a :class:`~.spec.ModuleSpec` and ``generate``;
- :mod:`.catalogue`: the catalogue's module, and :mod:`.own`: the module of a user's own loss,
  each a spec; :mod:`.layer`: the linear layer's contractions;
- :mod:`.module`: ``load`` (the one place generated code is compiled) and the verification of
  both kinds of module against their derivations.
"""
from ..files import write_atomically
from .catalogue import BODIES, FORMULAS, MODULE_NAME, load_module, source
from .spec import ModuleSpec, generate

__all__ = ["BODIES", "FORMULAS", "MODULE_NAME", "ModuleSpec", "generate", "load_module", "source",
           "write_atomically"]
