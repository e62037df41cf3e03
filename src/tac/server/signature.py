"""Twilio request signatures: HTTP webhooks (form or JSON with ``bodySHA256``) and WebSockets.

The URL Twilio signed is rebuilt from the configured public base URL when there is one
(``TAC_PUBLIC_BASE_URL``, else ``https://TWILIO_VOICE_PUBLIC_DOMAIN``), and only otherwise from
``X-Forwarded-Proto``/``X-Forwarded-Host`` and ``Host``: a deterministic setting beats headers
that any client can send.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import parse_qsl

from fastapi import HTTPException, Request, WebSocket
from fastapi.exceptions import WebSocketException
from starlette.datastructures import Headers
from twilio.request_validator import RequestValidator

__all__ = [
    "FormParams",
    "build_http_signature_dependency",
    "build_websocket_signature_dependency",
    "public_url",
    "validate_signature",
    "validate_twilio_webhook",
]

SIGNATURE_HEADER = "x-twilio-signature"
# base64 of an HMAC-SHA1: 20 bytes → 27 characters and one '=' of padding
_SIGNATURE_SHAPE = re.compile(r"[A-Za-z0-9+/]{27}=")


def public_url(
    path: str,
    query: str,
    headers: Headers | Mapping[str, str],
    *,
    request_scheme: str,
    request_host: str,
    public_base_url: str | None = None,
    websocket: bool = False,
) -> str:
    """The full URL Twilio requested, as Twilio saw it."""
    if public_base_url:
        base = public_base_url.rstrip("/")
        scheme, _, rest = base.partition("://")
    else:
        forwarded_proto = _first(headers.get("x-forwarded-proto"))
        forwarded_host = _first(headers.get("x-forwarded-host"))
        scheme = forwarded_proto or request_scheme
        rest = forwarded_host or _first(headers.get("host")) or request_host
    scheme = scheme.lower()
    if websocket:
        scheme = {"https": "wss", "http": "ws"}.get(scheme, scheme)
    elif scheme in ("ws", "wss"):
        scheme = {"wss": "https", "ws": "http"}[scheme]
    url = f"{scheme}://{rest}{path}"
    return f"{url}?{query}" if query else url


def well_formed(signature: str | None) -> bool:
    """Whether ``signature`` looks like Twilio's (base64 of an HMAC-SHA1), unchecked."""
    return signature is not None and _SIGNATURE_SHAPE.fullmatch(signature) is not None


def _first(value: str | None) -> str | None:
    if not value:
        return None
    return value.split(",")[0].strip() or None


def _request_url(request: Request, public_base_url: str | None) -> str:
    scope = request.scope
    if public_base_url and not scope.get("root_path"):
        # The common case, without building Starlette's URL object: the configured base URL
        # plus the path and query string exactly as the ASGI server decoded them.
        base = public_base_url.rstrip("/")
        scheme, _, rest = base.partition("://")
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"{_http_scheme(scheme.lower())}://{rest}{scope['path']}"
        return f"{url}?{query}" if query else url
    return public_url(
        request.url.path,
        request.url.query,
        request.headers,
        request_scheme=request.url.scheme,
        request_host=request.url.netloc,
        public_base_url=public_base_url,
    )


def _http_scheme(scheme: str) -> str:
    return {"wss": "https", "ws": "http"}.get(scheme, scheme)


def validate_twilio_webhook(
    request: Request,
    auth_token: str,
    body: str | bytes | Mapping[str, str],
    *,
    public_base_url: str | None = None,
) -> bool:
    """Check ``X-Twilio-Signature`` for a form (mapping) or raw (JSON) body."""
    return _validate(request, RequestValidator(auth_token), body, public_base_url)


def _validate(
    request: Request,
    validator: RequestValidator,
    body: str | bytes | Mapping[str, str],
    public_base_url: str | None,
) -> bool:
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        return False
    return validate_signature(validator, _request_url(request, public_base_url), body, signature)


def validate_signature(
    validator: RequestValidator,
    url: str,
    body: str | bytes | Mapping[str, str],
    signature: str,
) -> bool:
    """Whether ``signature`` is Twilio's for a request to ``url`` (the full URL Twilio
    requested) with a form body (a mapping; :class:`FormParams` keeps repeated fields) or a
    raw body (JSON, signed through the URL's ``bodySHA256``). No web framework needed."""
    if isinstance(body, Mapping):
        return _signed(validator, url, body, signature)
    _, _, query = url.partition("?")
    expected_hash = _query_value(query, "bodySHA256")
    if expected_hash is None:
        return False  # a raw body is only signed through its hash: fail closed
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    body_ok = hmac.compare_digest(hashlib.sha256(raw).hexdigest().encode(), expected_hash.encode())
    if not body_ok:
        return False
    # The body matches its hash; the URL (with bodySHA256) carries the signature. A body that is
    # not UTF-8 is still checked here, so that a signed one gets its 400 rather than a 403.
    return _signed(validator, url, {}, signature)


def _query_value(query: str, name: str) -> str | None:
    """The last value of ``name`` in a query string (as ``dict(parse_qsl(...))`` gives it)."""
    if "%" not in query and "+" not in query:
        found = None
        prefix = name + "="
        for part in query.split("&"):
            if part.startswith(prefix) and len(part) > len(prefix):
                found = part[len(prefix) :]
        return found
    return dict(parse_qsl(query)).get(name)


def _signed(
    validator: RequestValidator, url: str, params: Mapping[str, str], signature: str
) -> bool:
    """``validator.validate`` with a fast path: the exact URL first (one HMAC), and only when
    that fails the with-port and without-port variants Twilio's validator also accepts."""
    expected = validator.compute_signature(url, params).encode()
    if hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
        return True
    return bool(validator.validate(url, params, signature))


def build_http_signature_dependency(
    auth_token: str, *, public_base_url: str | None = None, enabled: bool = True
) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency answering 403 unless the request is signed by Twilio."""
    validator = RequestValidator(auth_token)

    async def check_signature(request: Request) -> None:
        if not enabled:
            return
        if not well_formed(request.headers.get(SIGNATURE_HEADER)):
            # decided before the body is read or parsed: no work for an unsigned request
            raise HTTPException(status_code=403, detail="Invalid Twilio signature")
        content_type = request.headers.get("content-type", "")
        body: str | bytes | Mapping[str, str]
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = await request.form()
            body = FormParams(form.multi_items())
        else:
            body = await request.body()
        if not _validate(request, validator, body, public_base_url):
            raise HTTPException(status_code=403, detail="Invalid Twilio signature")

    return check_signature


class FormParams(dict[str, str]):
    """Form fields with repeated names, in the shape RequestValidator's ``getall`` expects."""

    def __init__(self, items: Sequence[tuple[str, object]]) -> None:
        super().__init__({k: str(v) for k, v in items})
        self._items = [(k, str(v)) for k, v in items]

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self._items if k == name]


def build_websocket_signature_dependency(
    auth_token: str, *, public_base_url: str | None = None, enabled: bool = True
) -> Callable[[WebSocket], Awaitable[None]]:
    """A dependency checking a WebSocket handshake before ``accept()`` (close 1008 when bad).

    The query string is accepted either folded into the parameters (how the reference signs)
    or as part of the URL (Twilio's generic rule).
    """

    async def check_signature(websocket: WebSocket) -> None:
        if not enabled:
            return
        signature = websocket.headers.get(SIGNATURE_HEADER)
        if signature and _websocket_signature_ok(websocket, auth_token, signature, public_base_url):
            return
        raise WebSocketException(code=1008, reason="Invalid Twilio signature")

    return check_signature


def _websocket_signature_ok(
    websocket: WebSocket, auth_token: str, signature: str, public_base_url: str | None
) -> bool:
    query = websocket.url.query

    def url(with_query: str) -> str:
        return public_url(
            websocket.url.path,
            with_query,
            websocket.headers,
            request_scheme=websocket.url.scheme,
            request_host=websocket.url.netloc,
            public_base_url=public_base_url,
            websocket=True,
        )

    validator = RequestValidator(auth_token)
    if _signed(validator, url(""), dict(parse_qsl(query)), signature):
        return True
    return bool(query) and bool(validator.validate(url(query), {}, signature))
