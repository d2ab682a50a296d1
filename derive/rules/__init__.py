"""Stage 2 of the pipeline: the rules.

The registry and the way a rule is applied are in :mod:`.registry`; the rules themselves are
in one module a topic, and importing them registers them.
"""
from . import algebra, calculus, definitions, sums, tidy  # noqa: F401 (registers the rules)
from .registry import (KINDS, RULES, Rule, accepted, alternatives, apply, apply_together,
                       attempt, get, preorder_nodes, rule)

__all__ = ["KINDS", "RULES", "Rule", "accepted", "alternatives", "apply", "apply_together",
           "attempt", "get", "preorder_nodes", "rule"]
