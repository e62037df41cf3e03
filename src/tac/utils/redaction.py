"""Mask phone numbers, emails and TwiML ``<Parameter>`` values before they reach a log.

The ``mask_*`` functions are :mod:`tac.core.logging`'s (one of each), at the reference's path.
"""

from __future__ import annotations

import re

from tac.core.logging import mask_address, mask_email, mask_phone

__all__ = ["mask_address", "mask_email", "mask_phone", "redact_twiml_parameters"]

_MASK = "***"
_PARAMETER_VALUE = re.compile(
    r"""(<Parameter\b[^>]*?\bvalue\s*=\s*)(?:"[^"]*"|'[^']*')""", re.IGNORECASE
)


def redact_twiml_parameters(twiml: str | None) -> str:
    """TwiML with every ``<Parameter value="…">`` replaced by ``***`` (``None`` → ``""``)."""
    if not twiml:
        return ""

    def masked(match: re.Match[str]) -> str:
        quote = match.group(0)[-1]
        return f"{match.group(1)}{quote}{_MASK}{quote}"

    return _PARAMETER_VALUE.sub(masked, twiml)
