"""Deprecated names of the reference SDK, and a warning for what is accepted but does nothing."""

from __future__ import annotations

import importlib
import warnings

__all__ = ["deprecated_attribute", "warn_inert"]

# deprecated name -> (module, current name); resolved by each re-exporting module's __getattr__
_RENAMED: dict[str, tuple[str, str]] = {
    "TwiMLOptions": ("tac.models.voice", "VoiceTwiMLOptionsConversationRelay"),
}


def deprecated_attribute(module: str, name: str) -> object:
    """A module ``__getattr__`` body: the renamed object behind ``name``, with a warning.

    Each module that exports a deprecated name calls this directly from its own
    ``__getattr__``, so the warning points at the user's line (``stacklevel=3``).

    Raises:
        AttributeError: ``name`` is not a deprecated name either.
    """
    target = _RENAMED.get(name)
    if target is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    where, current = target
    warnings.warn(
        f"{name} is deprecated; use {current} (from {where})", DeprecationWarning, stacklevel=3
    )
    return getattr(importlib.import_module(where), current)


def warn_inert(what: str, instead: str) -> None:
    """Warn that ``what`` is accepted for the reference's sake and has no effect here.

    Called through one helper of the module that accepts ``what`` (the warning points at the
    user's line: ``stacklevel=4``).
    """
    warnings.warn(f"{what} has no effect in opentac: {instead}", DeprecationWarning, stacklevel=4)
