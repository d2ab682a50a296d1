"""Stage 4 of the pipeline: the checker (:mod:`.core`), its numeric evaluator
(:mod:`.numeric`) and the cache of passed checks (:mod:`.cache`)."""
from .cache import checked, fingerprint
from .core import Report, StepReport, check
from .sampling import sample, sample_targets
from .symbolic import symbolically_equal
from .numeric import Point, evaluate

__all__ = ["Point", "Report", "StepReport", "check", "checked", "evaluate", "fingerprint",
           "sample", "sample_targets", "symbolically_equal"]
