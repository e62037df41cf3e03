"""Customer and agent addresses, and the Memory lookups built from them (one place for both).

Twilio writes one address several ways: ``+15551234567``, ``whatsapp:+15551234567``,
``rcs:+1…``, ``sms:+1…``, ``tel:+1…``. :func:`bare_address` strips the channel prefix,
:func:`same_address` compares two addresses ignoring prefix and case, :func:`profile_lookup_key`
says how Conversation Memory finds the customer behind an address, and :func:`recall_query`
fits a text to what Recall accepts.
"""

from __future__ import annotations

from tac.models.session import Channel

__all__ = [
    "ADDRESS_PREFIXES",
    "MAX_RECALL_QUERY_CHARS",
    "bare_address",
    "profile_lookup_key",
    "recall_query",
    "same_address",
]

ADDRESS_PREFIXES = ("whatsapp", "rcs", "sms", "tel")
"""Channel prefixes an address may carry (``whatsapp:+1…``); stripped to compare or look up."""

MAX_RECALL_QUERY_CHARS = 1024
"""Recall accepts queries of 1 to 1,024 characters."""


def bare_address(address: str) -> str:
    """``address`` without its channel prefix and surrounding blanks (case kept)."""
    value = address.strip()
    prefix, sep, rest = value.partition(":")
    if sep and prefix.lower() in ADDRESS_PREFIXES:
        return rest.strip()
    return value


def same_address(a: str | None, b: str | None) -> bool:
    """Whether two addresses name the same endpoint (channel prefixes and case ignored)."""
    if not a or not b:
        return False
    return a == b or bare_address(a).lower() == bare_address(b).lower()


def profile_lookup_key(channel: Channel | str, address: str | None) -> tuple[str, str] | None:
    """How to look a customer up in Memory by address (CONTRACT: profile lookup by address).

    ``+1…`` (voice/SMS) → phone; ``whatsapp:+1…``/``rcs:+1…`` → phone without the prefix;
    ``name@host`` → email; chat identities and non-phone RCS senders → no lookup.
    """
    if not address:
        return None
    if Channel(channel) == Channel.CHAT:
        return None
    value = bare_address(address)
    if "@" in value:
        return ("email", value)
    digits = value.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    if digits.startswith("+") and digits[1:].isdigit():
        return ("phone", digits)
    return None


def recall_query(text: str | None) -> str | None:
    """A Recall query from ``text``: blank → no query; longer than Recall takes → its end.

    The end of a long message or question is kept: it is what was asked most recently.
    """
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    return text[-MAX_RECALL_QUERY_CHARS:]
