"""Label values with a bounded set of values (no ids, no addresses)."""

from __future__ import annotations

import re

__all__ = ["bounded", "channel_label", "operation_label"]

_CHANNELS = frozenset({"voice", "sms", "whatsapp", "rcs", "chat"})
# A path segment that is not an API version, a date or a resource name (letters only): an id
_ID_SEGMENT = re.compile(
    r"(?<=/)(?!(?:v\d{1,2}|\d{4}-\d{2}-\d{2}|[A-Za-z]{1,40}(?:\.json)?)(?:/|$))[^/]+"
)


def channel_label(channel: object) -> str:
    """A channel's label value: one of voice, sms, whatsapp, rcs, chat, or ``other``."""
    value = str(getattr(channel, "value", channel)).lower()
    return value if value in _CHANNELS else "other"


def bounded(value: object, allowed: frozenset[str]) -> str:
    """``value`` lowercased when it is one of ``allowed``; ``other`` otherwise."""
    text = str(value).lower()
    return text if text in allowed else "other"


def operation_label(method: str, path: str) -> str:
    """``POST /v2/Conversations/{id}/Actions`` from a request's method and path (ids removed)."""
    return f"{method} {_ID_SEGMENT.sub('{id}', path.partition('?')[0])}"
