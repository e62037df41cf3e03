"""httpx requests sent by aiohttp: the transport of :class:`tac.context.TwilioHTTP` and the sandbox.

Infrastructure only (no Twilio logic), so the sandbox, which shares nothing else with the SDK,
uses it too.

httpcore's pool walks every connection (polling idle sockets) on each request and response, so
its CPU cost per request grows with concurrency; aiohttp's connector hands out keep-alive
connections in constant time and parses HTTP in C. httpx stays the API (requests, responses,
auth, the exception types), so only this module knows aiohttp. Its exceptions become httpx ones
by one rule that matters to retries: an error is reported as "unsent" (``ConnectError``,
``ConnectTimeout``, ``ProxyError``, ``UnsupportedProtocol``) only when aiohttp failed before a
connection carried the request; anything later is a read-side error.

Timeouts: httpx's ``connect`` becomes aiohttp's ``sock_connect``, ``pool`` its ``connect``
(waiting for a pooled connection, connecting included) and ``read`` its ``sock_read``; aiohttp
has no separate write timeout.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]

_SKIP_AUTO_HEADERS = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})


def _translate(exc: BaseException) -> httpx.TransportError | None:
    """The httpx exception for an aiohttp (or timeout) exception, ``None`` for others."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        return httpx.ProxyError(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.ReadError(message)
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientError):
        return httpx.ReadError(message)
    return None


@contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        translated = _translate(exc)
        if translated is None:
            raise
        raise translated from exc


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` over one ``aiohttp.ClientSession`` (HTTP/1.1).

    The session is created on the first request (inside the running event loop).

    Args:
        limits: ``max_connections`` and ``keepalive_expiry`` size aiohttp's connector.
        verify: an ``ssl.SSLContext``, or ``True`` for httpx's default one.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        self._max_connections = limits.max_connections or 0
        self._keepalive = limits.keepalive_expiry if limits.keepalive_expiry is not None else 5.0
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        context = httpx.create_ssl_context() if self._verify is True else self._verify
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive,
            ssl=context,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=False,
            trust_env=False,
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeouts = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=timeouts.get("pool"),
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        headers = request.headers.multi_items()
        body: bytes | AsyncIterator[bytes] | None
        try:
            body = request.content or None
        except httpx.RequestNotRead:
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
            body = _chunks(request)
        with _mapped():
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=timeout,
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("ascii", "replace"),
            },
        )

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: aiohttp.ClientTimeout,
    ) -> httpx.Response:
        """Send one request whose body is already bytes; the answer comes back fully read.

        The short path of :class:`tac.context.TwilioHTTP`: no ``httpx.Request`` is built (its
        URL parsing and header merging cost more than the send itself). Failures raise the
        same httpx exceptions as :meth:`handle_async_request`.
        """
        session = self._session or self._open()
        with _mapped():
            async with session.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=timeout,
            ) as response:
                content = await response.read()
        return _ReadResponse(
            method,
            url,
            status_code=response.status,
            headers=response.raw_headers,
            content=content,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("ascii", "replace"),
            },
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def _chunks(request: httpx.Request) -> AsyncIterator[bytes]:
    stream = request.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError("an async transport needs an async request body")
    async for chunk in stream:
        yield chunk


class _ReadResponse(httpx.Response):
    """A read ``httpx.Response`` whose ``request`` is built only if something asks for it."""

    def __init__(self, method: str, url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lazy_request = (method, url)

    @property
    def request(self) -> httpx.Request:
        if self._request is None:
            self._request = httpx.Request(*self._lazy_request)
        return self._request

    @request.setter
    def request(self, value: httpx.Request) -> None:
        self._request = value


class _Body(httpx.AsyncByteStream):
    """aiohttp's response body as an httpx stream; closing returns the connection to the pool."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped():
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        self._response.release()
