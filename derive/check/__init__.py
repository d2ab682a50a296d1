"""Stage 4 of the pipeline: the checker (:mod:`.core`) and the cache of passed checks
(:mod:`.cache`)."""
from .cache import checked, fingerprint
from .core import (Report, StepReport, check, concretize, numeric_value, sample, sample_targets,
                   symbolically_equal)

__all__ = ["Report", "StepReport", "check", "checked", "concretize", "fingerprint",
           "numeric_value", "sample", "sample_targets", "symbolically_equal"]
