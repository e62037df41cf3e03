"""The sandbox's HTTP sender: webhooks to the app and the control client's requests.

aiohttp hands out pooled keep-alive connections in constant time, where httpx's default pool
walks every open connection per request; simulated customers long-poll, so many stay open
(decision 0006). Failures surface as httpx's exception types, which callers already know:
``ConnectError`` (nothing was sent), ``ReadTimeout``/``ReadError`` (after).
"""

from __future__ import annotations

import asyncio
import base64
import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

_SKIP_AUTO_HEADERS = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})


@dataclass(frozen=True)
class HttpResponse:
    """A fully read response."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class HttpSender:
    """One pooled aiohttp session, opened on first use inside the running loop.

    Args:
        base_url: prefix for relative paths.
        auth: HTTP basic credentials sent with every request.
        timeout: seconds a request may take unless the call says otherwise.
        max_connections: pool size (0: unlimited).
    """

    def __init__(
        self,
        *,
        base_url: str = "",
        auth: tuple[str, str] | None = None,
        timeout: float = 30.0,
        max_connections: int = 100,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._authorization = _basic(*auth) if auth else None
        self._timeout = timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, keepalive_timeout=4.0
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=False,
            trust_env=False,
        )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        """Send one request and read the whole answer; raises ``httpx.TransportError``."""
        session = self._session or self._open()
        sent_headers = dict(headers or {})
        if self._authorization:
            sent_headers["Authorization"] = self._authorization
        if json is not None:
            content = jsonlib.dumps(json).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        target = url if "://" in url else f"{self._base_url}{url}"
        limit = self._timeout if timeout is None else timeout
        try:
            async with session.request(
                method,
                target,
                params={k: _param(v) for k, v in (params or {}).items()},
                headers=sent_headers,
                data=content,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=limit, sock_connect=min(limit, 5.0)),
            ) as response:
                body = await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        except (aiohttp.ServerTimeoutError, asyncio.TimeoutError) as exc:
            raise httpx.ReadTimeout(f"no answer within {limit}s") from exc
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise httpx.UnsupportedProtocol(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc
        return HttpResponse(response.status, body)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()
