"""Twilio's TLS edge: how a URL the app wrote reaches the app the sandbox knows.

Twilio reaches apps over TLS at their public domain (``wss://{domain}/ws``,
``https://{domain}/...``); an app behind a TLS proxy listens on plain HTTP. When a secure URL
names the app's own host and port but the app listens on plain ``http``, the sandbox plays that
proxy: it connects with ``ws``/``http`` and says so in ``X-Forwarded-Proto: https`` (which
uvicorn honours from loopback), while the signature still covers the URL as written, as
Twilio's does.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

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
