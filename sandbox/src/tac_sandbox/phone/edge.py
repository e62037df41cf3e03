"""Twilio's TLS edge: how a URL the app wrote reaches the app the sandbox knows.

Twilio reaches apps over TLS at their public domain (``wss://{domain}/ws``,
``https://{domain}/...``); an app behind a TLS proxy listens on plain HTTP. When a secure URL
names the app's own host and port but the app listens on plain ``http``, the sandbox plays that
proxy: it connects with ``ws``/``http`` and says so in ``X-Forwarded-Proto: https`` (which
uvicorn honours from loopback), while the signature still covers the URL as written, as
Twilio's does. Requests Twilio makes to its own hosts go to the sandbox (:func:`to_sandbox`).
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

_PLAIN = {"wss": "ws", "https": "http"}


def through_edge(url: str, app_url: str) -> tuple[str, dict[str, str]]:
    """The URL to connect to for ``url``, and the headers a TLS proxy would add."""
    parts = urlsplit(url)
    app = urlsplit(app_url)
    if parts.scheme in _PLAIN and app.scheme == "http" and _netloc(parts) == _netloc(app):
        plain = urlunsplit((_PLAIN[parts.scheme], app.netloc, parts.path, parts.query, ""))
        return plain, {"X-Forwarded-Proto": "https"}
    return url, {}


def _netloc(parts: SplitResult) -> str:
    """``host:port`` as written (a public domain names no default port)."""
    host = parts.hostname or ""
    return f"{host}:{parts.port}" if parts.port else host


def to_sandbox(
    url: str, sandbox_url: str | None, sandbox_auth: tuple[str, str]
) -> tuple[str, httpx.BasicAuth | None]:
    """Where a request Twilio makes really goes, and the credentials it needs: a
    ``*.twilio.com`` URL (e.g. Studio's) goes to the sandbox's product of that name, and a URL
    of the sandbox itself stays, both with the account's credentials (the sandbox's products
    require them); any other URL stays, without (``None``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.endswith(".twilio.com") and sandbox_url:
        product = host.split(".", 1)[0]
        base = urlsplit(sandbox_url)
        path = f"{base.path}/{product}{parts.path}"
        url = urlunsplit((base.scheme, base.netloc, path, parts.query, ""))
        return url, httpx.BasicAuth(*sandbox_auth)
    if sandbox_url and url.startswith(sandbox_url + "/"):
        return url, httpx.BasicAuth(*sandbox_auth)
    return url, None
