"""Errors of every stage of the pipeline, in one small hierarchy.

The CLI turns any :class:`DeriveError` into one line on stderr: exit status 1 for a
:class:`CheckError` or an :class:`OutputError`, 2 for the others (bad input).
"""


class DeriveError(Exception):
    """Base class of every error this package raises on purpose."""


class UnknownRuleError(DeriveError, KeyError):
    """A derivation asked for a rule that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class RuleDoesNotApplyError(DeriveError):
    """A rule was applied to an expression with no sub-expression it rewrites."""


class CheckError(DeriveError):
    """A step of a derivation is not equal to the step before it."""


class UnknownDerivationError(DeriveError, KeyError):
    """No derivation is registered under the requested name."""

    def __str__(self) -> str:
        return str(self.args[0])


class InputError(DeriveError, ValueError):
    """Numbers given by a user do not fit the model (shape, range, sign, value)."""


class OutputError(DeriveError, OSError):
    """A file or folder the user named cannot be written (missing folder, a file where a folder
    should be, no permission, a full disk), or the output cannot be shown."""


class ParseError(DeriveError, ValueError):
    """A loss written as text or as LaTeX that derive cannot read: a syntax error, an unknown
    function or name, an index that no sum binds, a limit exceeded.  The first line of the
    message names the problem; where it has a place in the text, the next two lines show the
    text and a caret under it, and ``column`` (1-based) says where."""

    def __init__(self, message: str, column: int | None = None):
        super().__init__(message)
        self.column = column
