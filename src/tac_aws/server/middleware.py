"""ASGI middleware for apps behind an AWS Application Load Balancer."""

from __future__ import annotations

from typing import Any

__all__ = ["ALBForwardedHeadersMiddleware"]


class ALBForwardedHeadersMiddleware:
    """Adds ``X-Forwarded-Host: public_domain`` when the proxy (an ALB) sent none, and
    ``X-Forwarded-Proto: https`` for that host, for HTTP and WebSocket requests.

    opentac validates Twilio's signatures against the configured public URL, so TAC's own
    routes do not need this; routes of yours that build URLs from forwarded headers do.
    """

    def __init__(self, app: Any, public_domain: str | None) -> None:
        self.app = app
        self.public_domain = public_domain

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        domain = self.public_domain
        if domain and scope["type"] in ("http", "websocket"):
            headers = [(k, v) for k, v in scope.get("headers", [])]
            host = next((v for k, v in headers if k.lower() == b"x-forwarded-host"), None)
            if host is None:
                host = domain.encode()
                headers.append((b"x-forwarded-host", host))
            if host == domain.encode():
                headers = [(k, v) for k, v in headers if k.lower() != b"x-forwarded-proto"]
                headers.append((b"x-forwarded-proto", b"https"))
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)
