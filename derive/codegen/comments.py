"""The comments of generated lines: array formulas as text that reads like the formulas."""
from __future__ import annotations

from sympy import Expr, Mul, Number, Symbol

from ..render.printers import TextPrinter
from .ir import _MATH, LOG_PROBS, LOG_PROBS_AT, PROBS, PROBS_AT, ClassSum, OneMinusExp


class CommentPrinter(TextPrinter):
    """Array formulas as the comments of generated lines."""

    def __init__(self, math: dict[Symbol, str]):
        super().__init__()
        self.math = {**_MATH, **math}

    def _print_Symbol(self, expr):
        return self.math.get(expr, expr.name)

    def _print_ClassSum(self, expr):
        return "Σ_j %s" % self._factor(expr.args[0])

    def _print_Column(self, expr):
        return self._print(expr.args[0])

    _print_PairAxis = _print_Column

    def _print_Row(self, expr):
        return "%sᵀ" % self._factor(expr.args[0])

    def _print_SumXLogQ(self, expr):
        return "Σ_j %s" % self._factor(expr.args[0] * expr.args[1])

    def _print_SumOffLabel(self, expr):
        return "Σ_(j≠c) %s" % self._factor(expr.args[0])

    def _print_AtLabel(self, expr):
        return "%s at the label" % self._factor(expr.args[0])

    _print_ClassAt = _print_AtLabel

    def _print_OneHot(self, expr):
        return "y (one-hot)"

    def _print_SetAtLabel(self, expr):
        return "%s, and %s at the label" % (self._print(expr.args[0]), self._print(expr.args[1]))

    def _print_SumOffTop(self, expr):
        return "Σ_(j≠top) %s" % self._factor(expr.args[0])

    def _print_Log1p(self, expr):
        return "log(1 + %s)" % self._print(expr.args[0])

    def _print_LogSumExp(self, expr):
        return "log Σ_j e^%s" % self._factor(expr.args[0])

    def _print_LogSoftmax(self, expr):
        return "log softmax(%s)" % self._print(expr.args[0])

    def _print_Softmax(self, expr):
        return "softmax(%s)" % self._print(expr.args[0])

    def _print_SoftPlus(self, expr):
        return "log(1 + e^%s)" % self._factor(expr.args[0])

    def _print_Sigmoid(self, expr):
        return "σ(%s)" % self._print(expr.args[0])

    def _print_OneMinusExp(self, expr):
        if expr.args[0] in (LOG_PROBS, LOG_PROBS_AT):  # 1 - e^{log q} is 1 - q
            return "1 - %s" % self._print(PROBS if expr.args[0] == LOG_PROBS else PROBS_AT)
        return "1 - e^%s" % self._factor(expr.args[0])

    def _print_LogOneMinusExp(self, expr):
        return "log(1 - e^%s)" % self._factor(expr.args[0])

    def _print_LogRatio(self, expr):
        return "(%s)/(%s)" % (self._print(expr.args[0]), self._print(OneMinusExp(expr.args[0])))

    def _print_LogAddExp(self, expr):
        return "log(e^%s + e^%s)" % (self._factor(expr.args[0]), self._factor(expr.args[1]))

    def _print_AtTop(self, expr):
        return "%s at the top" % self._factor(expr.args[0])

    def _print_SumOffTopOf(self, expr):
        return "Σ_(j≠top) %s" % self._factor(expr.args[0] * expr.args[1])

    def _print_LogOneMinusSoftmax(self, expr):
        return "log(1 - q)"

    def _print_LogOf(self, expr):
        return "log(%s)" % self._print(expr.args[0])

    def _print_BalanceTop(self, expr):
        return "%s, and at the top minus the sum of the others" % self._print(expr.args[0])

    def _print_XLogY(self, expr):
        return "%s·log(%s)" % (self._factor(expr.args[0]), self._print(expr.args[1]))

    def _factor(self, f, alone=False):
        if isinstance(f, ClassSum):
            return self._print(f)
        if isinstance(f, OneMinusExp):
            return "(%s)" % self._print(f)
        return super()._factor(f, alone or isinstance(f, Mul))


def fold(expr: Expr, folds: dict[Expr, Expr]) -> Expr:
    """``expr`` with the definitions of q and log q (and their entries at the labels) folded
    back into the symbols, for comments that read like the formulas; a definition that is a
    product is found among the factors of a larger product too."""
    def visit(e):
        if e in folds:
            return folds[e]
        if not e.args or isinstance(e, (Symbol, Number)):
            return e
        e = e.func(*map(visit, e.args))
        if isinstance(e, Mul):
            for key, symbol in folds.items():
                if isinstance(key, Mul) and all(f in e.args for f in key.args):
                    rest = list(e.args)
                    for f in key.args:
                        rest.remove(f)
                    return Mul(symbol, *rest)
        return e
    return visit(expr)



def comment(code, printer: CommentPrinter, folds: dict[Expr, Expr]) -> str:
    """What line ``code`` computes, with q and log q folded back into their symbols (the
    lines that compute q and log q show their definitions)."""
    meaning = code.meaning
    if code.name in (PROBS.name, LOG_PROBS.name):  # the definition, not its name
        meaning = meaning.func(*(fold(arg, folds) for arg in meaning.args))
    return printer.doprint(fold(meaning, folds))
