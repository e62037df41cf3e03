"""Point the official ``twilio`` library at a sandbox (the only change a Twilio example needs).

The library builds URLs like ``https://memory.twilio.com/v1/...``; this HTTP client sends them to
``{sandbox}/memory/v1/...`` instead, the same rule as ``TWILIO_API_BASE_URL``.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8100"


def sandbox_url(url: str, base_url: str) -> str:
    """Rewrite ``https://{product}[.{region}].twilio.com/path`` to ``{base_url}/{product}/path``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host.endswith(".twilio.com"):
        return url
    product = host.split(".", 1)[0]
    base = urlsplit(base_url.rstrip("/"))
    return urlunsplit(
        (base.scheme, base.netloc, f"{base.path}/{product}{parts.path}", parts.query, "")
    )


class SandboxHttpClient(TwilioHttpClient):  # type: ignore[misc]
    """A ``twilio`` HTTP client whose requests go to a sandbox."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return super().request(method, sandbox_url(url, self.base_url), *args, **kwargs)


def twilio_http_client(base_url: str | None = None, **kwargs: Any) -> SandboxHttpClient:
    """An ``http_client`` for ``twilio.rest.Client`` that talks to the sandbox.

    ``base_url`` defaults to ``$TWILIO_API_BASE_URL``, then ``http://127.0.0.1:8100``::

        client = Client(account_sid, auth_token, http_client=tac_sandbox.twilio_http_client())
    """
    url = base_url or os.environ.get("TWILIO_API_BASE_URL") or DEFAULT_SANDBOX_URL
    return SandboxHttpClient(url, **kwargs)
