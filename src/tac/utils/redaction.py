"""Mask phone numbers, emails and TwiML ``<Parameter>`` values before they reach a log."""

from __future__ import annotations

import re

from tac.core import logging as _logging

__all__ = ["mask_address", "mask_email", "mask_phone", "redact_twiml_parameters"]

_MASK = "***"
_PARAMETER_VALUE = re.compile(
    r"""(<Parameter\b[^>]*?\bvalue\s*=\s*)(?:"[^"]*"|'[^']*')""", re.IGNORECASE
)


def mask_phone(value: str | None) -> str:
    """``+14155550123`` → ``+1***0123``; empty or ``None`` → ``***``."""
    return _logging.mask_phone(value) if value else _MASK


def mask_email(value: str | None) -> str:
    """``ana@example.com`` → ``a***@example.com``; empty or ``None`` → ``***``."""
    return _logging.mask_email(value) if value else _MASK


def mask_address(value: str | None) -> str:
    """Any channel address (phone, ``whatsapp:``/``rcs:`` phone, email, id), masked."""
    return _logging.mask_address(value) if value else _MASK


def redact_twiml_parameters(twiml: str | None) -> str:
    """TwiML with every ``<Parameter value="…">`` replaced by ``***`` (``None`` → ``""``)."""
    if not twiml:
        return ""

    def masked(match: re.Match[str]) -> str:
        quote = match.group(0)[-1]
        return f"{match.group(1)}{quote}{_MASK}{quote}"

    return _PARAMETER_VALUE.sub(masked, twiml)
