"""``TACError``, the root of every error opentac raises (a leaf module: any package imports it).

Each error also keeps the built-in class that code written for the reference SDK catches
(``ValueError``, ``RuntimeError``, ``LookupError``, ``KeyError``), so ``except TACError`` and the
old ``except ValueError`` both work. The tree of Twilio API errors is in :mod:`tac.context.errors`.
"""

__all__ = ["TACConfigError", "TACError"]


class TACError(Exception):
    """Base class of every error raised by opentac."""


class TACConfigError(TACError, ValueError, KeyError):
    """A setting is missing or invalid. The message names the variable and what is expected.

    A :class:`TACError`, and both a ``ValueError`` and a ``KeyError`` so code written for the
    reference SDK (which raised either) keeps catching it.
    """

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")

    def __str__(self) -> str:
        return f"{self.variable}: {self.problem}"
