"""Identifiers in Twilio's formats.

Classic SIDs are a two-letter prefix and 32 hex digits (``CA…``, ``AC…``). The newer APIs use
Twilio Type IDs: ``<prefix>_`` and 26 characters, the first in ``0-7`` and the rest in
``0-9a-z`` (``conv_conversation_…``, ``mem_profile_…``).
"""

from __future__ import annotations

import secrets
import string

_TTID_REST = string.digits + string.ascii_lowercase


def sid(prefix: str) -> str:
    """A classic SID: ``prefix`` + 32 lowercase hex digits."""
    if len(prefix) != 2 or not prefix.isalpha():
        raise ValueError(f"a SID prefix is two letters, got {prefix!r}")
    return prefix.upper() + secrets.token_hex(16)


def ttid(prefix: str) -> str:
    """A Twilio Type ID: ``prefix_`` + ``[0-7][0-9a-z]{25}``."""
    first = secrets.choice("01234567")
    rest = "".join(secrets.choice(_TTID_REST) for _ in range(25))
    return f"{prefix}_{first}{rest}"
