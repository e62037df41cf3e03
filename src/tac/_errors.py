"""``TACError``, the root of every error opentac raises (a leaf module: any package imports it).

Each error also keeps the built-in class that code written for the reference SDK catches
(``ValueError``, ``RuntimeError``, ``LookupError``, ``KeyError``), so ``except TACError`` and the
old ``except ValueError`` both work. The tree of Twilio API errors is in :mod:`tac.context.errors`.
"""

__all__ = ["TACError"]


class TACError(Exception):
    """Base class of every error raised by opentac."""
