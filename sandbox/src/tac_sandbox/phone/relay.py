"""The ConversationRelay frames an app may send, checked as Twilio checks them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tac_sandbox.phone.record import (
    _SEND_DIGITS,
)


def validate_app_message(message: Any) -> str | None:
    """Why ConversationRelay would reject an app message (``None`` when it is valid)."""
    if not isinstance(message, dict):
        return "not a JSON object"
    kind = message.get("type")
    if kind == "text":
        if not isinstance(message.get("token"), str):
            return "text.token is required and must be a string"
        return _optional(message, ("last", "interruptible", "preemptible"), bool) or _optional(
            message, ("lang",), str
        )
    if kind == "play":
        source = message.get("source")
        if not isinstance(source, str) or not source:
            return "play.source is required and must be a URL"
        loop = message.get("loop")
        if loop is not None and (not isinstance(loop, int) or isinstance(loop, bool) or loop < 0):
            return "play.loop must be a non-negative integer"
        return _optional(message, ("preemptible", "interruptible"), bool)
    if kind == "sendDigits":
        digits = message.get("digits")
        if not isinstance(digits, str) or not _SEND_DIGITS.match(digits):
            return "sendDigits.digits must be a non-empty string of 0-9, w, # and *"
        return None
    if kind == "language":
        given = [message.get(k) for k in ("ttsLanguage", "transcriptionLanguage")]
        if all(v is None for v in given):
            return "language needs ttsLanguage or transcriptionLanguage"
        return _optional(message, ("ttsLanguage", "transcriptionLanguage"), str)
    if kind == "end":
        return _optional(message, ("handoffData",), str)
    if kind is None:
        return "the message has no type"
    return f"unknown message type {kind!r}"


def _optional(message: dict[str, Any], names: Sequence[str], kind: type) -> str | None:
    for name in names:
        value = message.get(name)
        if value is not None and not isinstance(value, kind):
            return f"{message['type']}.{name} must be a {kind.__name__}"
    return None
