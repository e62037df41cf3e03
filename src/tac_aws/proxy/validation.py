"""``TwilioSignatureValidator``: Twilio's ``X-Twilio-Signature`` on AWS Lambda events."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from twilio.request_validator import RequestValidator

from tac.core.logging import get_logger
from tac.server.signature import FormParams, validate_signature

__all__ = ["TwilioSignatureValidator", "event_body", "event_headers", "event_path"]

logger = get_logger("tac_aws.proxy")


def event_headers(event: Mapping[str, Any]) -> dict[str, str]:
    """The event's headers with lower-case names (a missing or ``None`` value is ``""``)."""
    raw = event.get("headers") or {}
    return {str(name).lower(): str(value or "") for name, value in raw.items()}


def event_body(event: Mapping[str, Any]) -> bytes | None:
    """The request body as bytes (``isBase64Encoded`` decoded); ``None`` when it is not
    valid base64."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def event_path(event: Mapping[str, Any]) -> str:
    """The path the client requested: ``rawPath`` (Function URLs, HTTP APIs, payload 2.0) or
    ``requestContext.path`` / ``path`` (REST APIs, payload 1.0; the former keeps the stage)."""
    raw = event.get("rawPath")
    if isinstance(raw, str) and raw:
        return raw
    context = event.get("requestContext") or {}
    path = context.get("path") or event.get("path") or "/"
    return str(path)


def _event_query(event: Mapping[str, Any]) -> str:
    raw = event.get("rawQueryString")
    if isinstance(raw, str):
        return raw
    multi = event.get("multiValueQueryStringParameters") or {}
    if multi:
        return urlencode([(k, v) for k, values in multi.items() for v in values or ()])
    single = event.get("queryStringParameters") or {}
    return urlencode(list(single.items()))


class TwilioSignatureValidator:
    """Checks ``X-Twilio-Signature`` on a Lambda event (Function URL, HTTP API or REST API).

    The URL Twilio signed is ``public_base_url`` plus the event's path when given, otherwise
    ``{X-Forwarded-Proto or https}://{Host}{path}`` with the event's query string. Form bodies
    are checked field by field (blank and repeated fields kept), JSON bodies through the
    URL's ``bodySHA256``, with the same check as opentac's server.

    Args:
        auth_token: the Twilio auth token the requests are signed with.
        public_base_url: the public URL in front of the function (e.g. a custom domain whose
            path mapping differs from the event's path).
    """

    def __init__(self, auth_token: str, public_base_url: str | None = None) -> None:
        if not auth_token:
            raise ValueError("TwilioSignatureValidator needs the Twilio auth token")
        self.request_validator = RequestValidator(auth_token)
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    def request_url(self, event: Mapping[str, Any]) -> str:
        """The full URL Twilio requested (and signed) for ``event``."""
        headers = event_headers(event)
        if self.public_base_url:
            base = self.public_base_url
        else:
            scheme = headers.get("x-forwarded-proto", "").split(",")[0].strip() or "https"
            base = f"{scheme}://{headers.get('host', '')}"
        url = f"{base}{event_path(event)}"
        query = _event_query(event)
        return f"{url}?{query}" if query else url

    def validate(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` carries Twilio's valid signature (``False`` when missing)."""
        headers = event_headers(event)
        signature = headers.get("x-twilio-signature", "")
        if not signature:
            logger.warning("request without X-Twilio-Signature refused")
            return False
        raw = event_body(event)
        if raw is None:
            return False
        url = self.request_url(event)
        body: bytes | FormParams
        if "application/x-www-form-urlencoded" in headers.get("content-type", "").lower():
            text = raw.decode("utf-8", "replace")
            body = FormParams(parse_qsl(text, keep_blank_values=True))
        else:
            body = raw
        valid = validate_signature(self.request_validator, url, body, signature)
        if not valid:
            logger.warning("invalid Twilio signature", url=url.split("?", 1)[0])
        return valid
