"""Errors raised by the core."""

from __future__ import annotations

from tac._errors import TACError


class TACConfigError(TACError, ValueError, KeyError):
    """A setting is missing or invalid. The message names the variable and what is expected.

    A :class:`~tac.context.TACError`, and both a ``ValueError`` and a ``KeyError`` so code
    written for the reference SDK (which raised either) keeps catching it.
    """

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")

    def __str__(self) -> str:
        return f"{self.variable}: {self.problem}"
