"""Errors raised by the core (defined in the leaf :mod:`tac._errors`, which every layer may
import)."""

from __future__ import annotations

from tac._errors import TACConfigError, TACError

__all__ = ["TACConfigError", "TACError"]
