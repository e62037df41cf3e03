"""How :class:`tac.context.TwilioHTTP`'s requests reach the network: one :class:`Sender` interface.

``TwilioHTTP`` encodes every request once (method, full URL, headers, body bytes) and hands it
to a sender, which returns a fully read ``httpx.Response`` or raises an ``httpx.TransportError``.
Retries, error classes and encoding live in ``TwilioHTTP``; a sender only moves bytes.

* :class:`AiohttpSender`, the default: aiohttp's connector hands out keep-alive connections in
  constant time and parses HTTP in C, where httpcore's pool walks every connection on each
  request (decisions 0001 and 0004 measure it). It honours ``HTTP_PROXY``/``HTTPS_PROXY``/
  ``ALL_PROXY``/``NO_PROXY``, read once when the sender is created, as httpx does.
* :class:`HttpxSender`: an ``httpx.AsyncClient`` passed in as ``client=``, or created over a
  ``transport=`` (``httpx.MockTransport`` in tests, an instrumented transport, respx…).

aiohttp failures become httpx exceptions by one rule that matters to retries: an error is
reported as "unsent" (``ConnectError``, ``ConnectTimeout``, ``ProxyError``,
``UnsupportedProtocol``) only when aiohttp failed before a connection carried the request;
anything later is a read-side error.

Timeouts: httpx's ``connect`` becomes aiohttp's ``sock_connect``, ``pool`` its ``connect``
(waiting for a pooled connection, connecting included) and ``read`` its ``sock_read``; aiohttp
has no separate write timeout.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiohttp
import httpx
from yarl import URL

__all__ = ["AiohttpSender", "AiohttpTransport", "HttpxSender", "Sender", "proxy_settings"]

_SKIP_AUTO_HEADERS = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})
_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class Sender(Protocol):
    """Sends one encoded request; the answer comes back fully read."""

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> httpx.Response:
        """Send ``method url`` with exactly these headers and body.

        Raises:
            httpx.TransportError: no answer (unsent only when surely unsent, see the module).
        """
        ...

    async def aclose(self) -> None:
        """Release what the sender owns."""
        ...


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


def proxy_settings() -> dict[str, str]:
    """The proxy variables in effect: ``{"http": url, "https": url, "all": url, "no": hosts}``.

    Read as urllib and httpx read them: lower or upper case, ``HTTP_PROXY`` ignored under CGI.
    """
    found = urllib.request.getproxies_environment()
    return {key: found[key] for key in ("http", "https", "all", "no") if key in found}


class _Proxies:
    """Which proxy (URL and ``Proxy-Authorization`` header) a URL goes through, per host."""

    def __init__(self, settings: Mapping[str, str]) -> None:
        self._settings = dict(settings)
        self._routes: dict[tuple[str, str], tuple[str, str | None] | None] = {}

    def __bool__(self) -> bool:
        return any(key in self._settings for key in ("http", "https", "all"))

    def route(self, url: str) -> tuple[str, str | None] | None:
        """``(proxy URL, Proxy-Authorization value or None)``, or ``None`` to go direct."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key in self._routes:
            return self._routes[key]
        found: tuple[str, str | None] | None = None
        proxy = self._settings.get(parts.scheme) or self._settings.get("all")
        host = parts.hostname or ""
        bypass = "no" in self._settings and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
            host if parts.port is None else f"{host}:{parts.port}", self._settings
        )
        if proxy and not bypass:
            if "://" not in proxy:
                proxy = f"http://{proxy}"
            target = urlsplit(proxy)
            authorization = None
            if target.username is not None:
                user = f"{unquote(target.username)}:{unquote(target.password or '')}"
                authorization = "Basic " + base64.b64encode(user.encode()).decode("ascii")
                proxy = target._replace(netloc=target.netloc.rpartition("@")[2]).geturl()
            found = (proxy, authorization)
        if len(self._routes) < 256:  # hosts, not conversations: a handful in practice
            self._routes[key] = found
        return found


class _AiohttpSession:
    """One lazily created ``aiohttp.ClientSession`` (created inside the running event loop)."""

    def __init__(self, limits: httpx.Limits | None, verify: ssl.SSLContext | bool) -> None:
        limits = limits or _DEFAULT_LIMITS
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
        # trust_env stays off: aiohttp would look the proxy up in a thread on every request
        # (and read ~/.netrc); AiohttpSender resolves proxies once per host instead.
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            auto_decompress=False,
            trust_env=False,
        )
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _extensions(response: aiohttp.ClientResponse) -> dict[str, object]:
    return {
        "http_version": b"HTTP/1.1",
        "reason_phrase": (response.reason or "").encode("ascii", "replace"),
    }


class AiohttpSender(_AiohttpSession):
    """The default sender: one ``aiohttp.ClientSession`` (HTTP/1.1), proxies from the environment.

    Args:
        timeout: httpx timeouts of each attempt (``write`` has no aiohttp equivalent).
        limits: ``max_connections`` and ``keepalive_expiry`` size aiohttp's connector.
        verify: an ``ssl.SSLContext``, or ``True`` for httpx's default one.
        trust_env: honour ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY`` (read once, here).
    """

    def __init__(
        self,
        *,
        timeout: httpx.Timeout,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = True,
    ) -> None:
        super().__init__(limits, verify)
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=timeout.pool, sock_connect=timeout.connect, sock_read=timeout.read
        )
        self._proxies = _Proxies(proxy_settings() if trust_env else {})

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> httpx.Response:
        session = self._session or self._open()
        proxy = proxy_headers = None
        if self._proxies and (route := self._proxies.route(url)) is not None:
            proxy, authorization = route
            if authorization is not None:
                # aiohttp sends proxy_headers only on a CONNECT (https); plain http carries the
                # proxy's credentials on the request itself.
                if url.startswith("https:"):
                    proxy_headers = {"Proxy-Authorization": authorization}
                else:
                    headers = {**headers, "Proxy-Authorization": authorization}
        with _mapped():
            async with session.request(
                method,
                URL(url, encoded=True),  # sent as TwilioHTTP encoded it, not re-normalised
                headers=headers,
                data=body,
                allow_redirects=False,
                compress=None,
                timeout=self._timeout,
                proxy=proxy,
                proxy_headers=proxy_headers,
            ) as response:
                content = await response.read()
        return _ReadResponse(
            method,
            url,
            status_code=response.status,
            headers=response.raw_headers,
            content=content,
            extensions=_extensions(response),
        )


class _ReadResponse(httpx.Response):
    """A read ``httpx.Response`` whose ``request`` is built only if something asks for it.

    Building an ``httpx.Request`` (URL parsing, header merging) costs more than the send on
    the hot path, and only error messages read it. Uses httpx's public ``request`` property.
    """

    def __init__(self, method: str, url: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._request_line = (method, url)

    @property
    def request(self) -> httpx.Request:
        try:
            return httpx.Response.request.fget(self)  # type: ignore[attr-defined,no-any-return]
        except RuntimeError:
            built = httpx.Request(*self._request_line)
            httpx.Response.request.fset(self, built)  # type: ignore[attr-defined]
            return built

    @request.setter
    def request(self, value: httpx.Request) -> None:
        httpx.Response.request.fset(self, value)  # type: ignore[attr-defined]

    def raise_for_status(self) -> httpx.Response:
        self.request  # noqa: B018  (httpx checks that a request is attached)
        return super().raise_for_status()


class HttpxSender:
    """Sends through an ``httpx.AsyncClient``: the one passed in, or one created over ``transport``.

    The client passed in keeps its own timeouts and is never closed here; its ``auth`` is not
    applied (``TwilioHTTP`` sends its own ``Authorization``). Redirects are not followed.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout,
        limits: httpx.Limits | None = None,
    ) -> None:
        if (client is None) == (transport is None):
            raise ValueError("HttpxSender needs exactly one of client= or transport=")
        self._owns = client is None
        self._client = client
        self._transport = transport
        self._timeout = timeout
        self._limits = limits or _DEFAULT_LIMITS

    @property
    def client(self) -> httpx.AsyncClient:
        """The client passed in, or the one created over ``transport`` on first use."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout,
                transport=self._transport,
                follow_redirects=False,
                limits=self._limits,
            )
        return self._client

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> httpx.Response:
        request = self.client.build_request(method, url, headers=headers, content=body)
        return await self.client.send(request, auth=None, follow_redirects=False)

    async def aclose(self) -> None:
        if self._owns and self._client is not None:
            await self._client.aclose()


class AiohttpTransport(_AiohttpSession, httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` over aiohttp, for code that wants an ``httpx.AsyncClient``.

    ``BaseAPIClient`` (the reference's client base) uses it. Streams request and response
    bodies; no proxy support (an ``httpx.AsyncClient`` given a transport ignores the
    environment's proxies too).

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
        super().__init__(limits, verify)

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
            extensions=_extensions(response),
        )

    async def aclose(self) -> None:
        await _AiohttpSession.aclose(self)


async def _chunks(request: httpx.Request) -> AsyncIterator[bytes]:
    stream = request.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise TypeError("an async transport needs an async request body")
    async for chunk in stream:
        yield chunk


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
