"""Check a webhook's Twilio signature in a test app (a thin wrapper over ``twilio``)."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator


def verify_webhook(
    auth_token: str, url: str, body: bytes | str, headers: Mapping[str, str]
) -> bool:
    """``True`` if ``X-Twilio-Signature`` signs ``url`` (with its ``bodySHA256``) and ``body``.

    ``url`` is the full URL the request was sent to, query string included.
    """
    signature = headers.get("X-Twilio-Signature") or headers.get("x-twilio-signature") or ""
    text = body.decode() if isinstance(body, bytes) else body
    return bool(RequestValidator(auth_token).validate(url, text, signature))
