"""``X-Twilio-Signature`` values, computed the way Twilio signs its requests.

HMAC-SHA1 over the URL followed by the sorted form fields, base64-encoded."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from twilio.request_validator import RequestValidator


def sign_form(url: str, fields: Mapping[str, str], auth_token: str) -> str:
    """The signature of a form POST (or a GET with ``fields`` empty) to ``url`` as sent."""
    signature: str = RequestValidator(auth_token).compute_signature(url, dict(fields))
    return signature


def sign_websocket(url: str, auth_token: str) -> str:
    """The signature of a WebSocket handshake to ``url``.

    Signed as the reference validates it: the URL without its query, with the query's
    parameters folded in like form fields (the same as the plain URL when there is no query).
    """
    parts = urlsplit(url)
    bare = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    return sign_form(bare, params, auth_token)
