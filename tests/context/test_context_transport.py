"""TwilioHTTP's senders (aiohttp by default, httpx when injected) against raw loopback servers.

Each server is a few lines of asyncio so a test can misbehave exactly: close after reading the
request, answer gzip, redirect. What matters most is ``request_sent``: a reply must never be
reported unsent once it may have reached Twilio. The behaviour tests run over both senders: the
unit tests on ``httpx.MockTransport`` use the httpx one, production the aiohttp one.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
import pytest

from tac.context import NotFoundError, TwilioHTTP, TwilioTransportError
from tac.context._transport import AiohttpSender, AiohttpTransport, HttpxSender, _translate

pytestmark = pytest.mark.integration

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


async def _serve(handler: Handler) -> tuple[asyncio.Server, str, list[bytes]]:
    seen: list[bytes] = []

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await _read_request(reader)) is not None:
                seen.append(request)
                await handler(request, writer)
                if writer.is_closing():
                    return
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", seen


def _answer(status: str, body: bytes, *extra: str) -> bytes:
    headers = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


SENDERS = ["aiohttp", "httpx"]


def _http(base: str, sleeps: list[float], sender: str = "aiohttp") -> TwilioHTTP:
    """A TwilioHTTP over the default sender, or over httpx's own transport (``"httpx"``)."""

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    transport = httpx.AsyncHTTPTransport() if sender == "httpx" else None
    return TwilioHTTP(
        api_key="SKx", api_secret="s", api_base_url=base, sleep=sleep, transport=transport
    )


@pytest.fixture(params=SENDERS)
def sender(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_default_sender_is_aiohttp_and_an_injected_transport_uses_httpx() -> None:
    async with _http("http://127.0.0.1:9", []) as default, _http("http://x", [], "httpx") as other:
        assert isinstance(default.sender, AiohttpSender)
        assert isinstance(other.sender, HttpxSender)


async def test_sender_sends_the_request(sender: str) -> None:
    async def ok(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("202 Accepted", b'{"id":"a1"}', "Content-Type: application/json"))

    server, base, seen = await _serve(ok)
    async with server, _http(base, [], sender) as http:
        body = await http.request_json("conversations", "POST", "/v2/X", json={"text": "hé"})
    assert body == {"id": "a1"}
    head, _, sent = seen[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /conversations/v2/X HTTP/1.1")
    assert json.loads(sent) == {"text": "hé"}
    lowered = head.lower()
    assert b"authorization: basic " in lowered
    assert b"user-agent: opentac/" in lowered
    assert b"content-type: application/json" in lowered
    assert b"aiohttp" not in lowered
    assert b"python-httpx" not in lowered


async def test_connection_closed_after_the_request_is_reported_sent_and_not_retried(
    sender: str,
) -> None:
    no_sleep: list[float] = []

    async def hang_up(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server, base, seen = await _serve(hang_up)
    async with server, _http(base, no_sleep, sender) as http:
        with pytest.raises(TwilioTransportError) as info:
            await http.request("conversations", "POST", "/v2/A", json={}, retry="unsent_only")
    assert info.value.request_sent is True
    assert len(seen) == 1
    assert no_sleep == []


async def test_refused_connection_is_reported_unsent(sender: str) -> None:
    no_sleep: list[float] = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _http(f"http://127.0.0.1:{port}", no_sleep, sender) as http:
        with pytest.raises(TwilioTransportError) as info:
            await http.request("conversations", "POST", "/v2/A", json={}, retry="never")
    assert info.value.request_sent is False


async def test_gzip_answer_is_decoded_and_redirect_is_not_followed(sender: str) -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> None:
        if request.startswith(b"GET /api/moved"):
            writer.write(_answer("301 Moved Permanently", b"", "Location: /api/elsewhere"))
        else:
            packed = gzip.compress(b'{"ok":true}')
            writer.write(_answer("200 OK", packed, "Content-Encoding: gzip"))

    server, base, seen = await _serve(answer)
    async with server, _http(base, [], sender) as http:
        assert await http.request_json("api", "GET", "/zipped") == {"ok": True}
        moved = await http.request("api", "GET", "/moved", accept={301})
    assert moved.status_code == 301
    assert moved.headers["location"] == "/api/elsewhere"
    assert len(seen) == 2


async def test_reason_phrase_and_keep_alive_reuse(sender: str) -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("418 Short And Stout", b"nope"))

    server, base, seen = await _serve(answer)
    async with server, _http(base, [], sender) as http:
        for _ in range(3):
            response = await http.request("api", "GET", "/t", accept={418})
            assert response.reason_phrase == "Short And Stout"
            assert response.text == "nope"
    assert len(seen) == 3


async def test_streamed_request_body_and_aclose_closes_the_session() -> None:
    async def echo(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("200 OK", request.partition(b"\r\n\r\n")[2]))

    async def body() -> AsyncIterator[bytes]:
        yield b"part1-"
        yield b"part2"

    server, base, _ = await _serve(echo)
    transport = AiohttpTransport()
    async with server, httpx.AsyncClient(transport=transport) as client:
        response = await client.post(f"{base}/x", content=body(), headers={"Content-Length": "11"})
        assert response.content == b"part1-part2"
        assert transport._session is not None
    assert transport._session is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout),
        (asyncio.TimeoutError(), httpx.ReadTimeout),
        (aiohttp.ServerDisconnectedError(), httpx.ReadError),
        (aiohttp.ClientOSError(104, "reset"), httpx.ReadError),
        (aiohttp.ClientPayloadError("short"), httpx.ReadError),
        (aiohttp.InvalidURL("nope"), httpx.UnsupportedProtocol),
    ],
)
def test_translation_only_calls_connect_failures_unsent(
    error: BaseException, expected: type[httpx.TransportError]
) -> None:
    translated = _translate(error)
    assert type(translated) is expected


def test_translation_leaves_other_exceptions_alone() -> None:
    assert _translate(ValueError("x")) is None
    assert _translate(asyncio.CancelledError()) is None


async def test_forms_queries_and_caller_headers_are_encoded_once(sender: str) -> None:
    async def ok(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("200 OK", b"{}", "Content-Type: application/json"))

    server, base, seen = await _serve(ok)
    async with server, _http(base, [], sender) as http:
        await http.request(
            "studio",
            "POST",
            "/v2/Flows/FW1/Executions",
            data={"To": "+1 555", "Tag": ["a", "b"], "Flag": True, "Off": False, "Empty": None},
            headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        await http.request("memory", "GET", "/v1/Stores", params={"pageSize": 5, "q": "a b"})
        await http.request("memory", "GET", "/v1/Stores?x=1", params={"pageToken": "t/1"})
    form_head, _, form_body = seen[0].partition(b"\r\n\r\n")
    assert form_body == b"To=%2B1+555&Tag=a&Tag=b&Flag=true&Off=false&Empty="
    content_types = [
        line for line in form_head.lower().split(b"\r\n") if line.startswith(b"content-type:")
    ]
    assert content_types == [b"content-type: application/x-www-form-urlencoded; charset=utf-8"]
    assert seen[1].startswith(b"GET /memory/v1/Stores?pageSize=5&q=a+b HTTP/1.1")
    assert seen[2].startswith(b"GET /memory/v1/Stores?x=1&pageToken=t%2F1 HTTP/1.1")


async def test_errors_name_the_request_and_a_closed_client_refuses(sender: str) -> None:
    async def missing(request: bytes, writer: asyncio.StreamWriter) -> None:
        body = b'{"code": 20404, "message": "not here", "status": 404}'
        writer.write(_answer("404 Not Found", body, "Content-Type: application/json"))

    server, base, _ = await _serve(missing)
    async with server, _http(base, [], sender) as http:
        with pytest.raises(NotFoundError) as info:
            await http.request("conversations", "GET", "/v2/Conversations/conv_1")
        await http.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await http.request("conversations", "GET", "/v2/Conversations/conv_1")
    assert info.value.method == "GET"
    assert info.value.url == f"{base}/conversations/v2/Conversations/conv_1"
    assert info.value.code == 20404
    response = info.value.response if hasattr(info.value, "response") else None
    assert response is None or response.request.method == "GET"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"text": "olá ✓", "n": 1.5, "none": None, "list": [1, "a"]}},
        {"data": {"To": "+1 555", "Tag": ["a", "b"], "Flag": True, "Empty": None, "N": 3}},
        {"params": {"pageSize": 5, "pageToken": "a/b c", "flag": False}},
        {"json": {}, "headers": {"Idempotency-Key": "k-1", "accept": "text/plain"}},
    ],
)
async def test_every_sender_puts_the_same_bytes_on_the_wire(kwargs: dict[str, object]) -> None:
    """The contract of a sender: what TwilioHTTP encoded reaches the server unchanged."""

    async def ok(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("200 OK", b"{}"))

    def parsed(raw: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
        head, _, body = raw.partition(b"\r\n\r\n")
        start, *lines = head.split(b"\r\n")
        headers = dict(line.lower().split(b": ", 1) for line in lines)
        return start, headers, body

    server, base, seen = await _serve(ok)
    shared = httpx.AsyncClient(auth=("client-user", "ignored"), headers={"X-Client": "1"})
    clients = [
        TwilioHTTP(api_key="SKx", api_secret="s", api_base_url=base),
        TwilioHTTP(
            api_key="SKx", api_secret="s", api_base_url=base, transport=httpx.AsyncHTTPTransport()
        ),
        TwilioHTTP(
            api_key="SKx",
            api_secret="s",
            api_base_url=base,
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        ),
        TwilioHTTP(api_key="SKx", api_secret="s", api_base_url=base, client=shared),
    ]
    method = "GET" if "params" in kwargs else "POST"
    async with server, shared:
        for http in clients[:2]:
            async with http:
                await http.request("api", method, "/v1/Things", **kwargs)  # type: ignore[arg-type]
        async with clients[3] as http:
            await http.request("api", method, "/v1/Things", **kwargs)  # type: ignore[arg-type]
    (start_a, headers_a, body_a), (start_b, headers_b, body_b), (start_c, headers_c, body_c) = map(
        parsed, seen
    )
    assert start_a == start_b == start_c
    assert body_a == body_b == body_c
    for headers in (headers_b, headers_c):
        headers.pop(b"connection", None)  # httpx says keep-alive; HTTP/1.1 means it anyway
    # A shared client's own default headers ride along; its auth never replaces TwilioHTTP's.
    assert headers_c.pop(b"x-client") == b"1"
    assert headers_a == headers_b == headers_c


async def test_mock_transport_sees_exactly_the_encoded_request() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    async with TwilioHTTP(
        api_key="SKx", api_secret="s", transport=httpx.MockTransport(handler)
    ) as http:
        await http.request("api", "POST", "/v1/X", data={"A": ["1", "2"], "B": True})
    assert seen[0].content == b"A=1&A=2&B=true"
    assert seen[0].headers["accept-encoding"] == "gzip, deflate"
    assert seen[0].headers["content-type"] == "application/x-www-form-urlencoded"


# Proxies ------------------------------------------------------------------------------------


async def _proxy(*, require_auth: str | None = None) -> tuple[asyncio.Server, str, list[bytes]]:
    """A tiny forward proxy: absolute-form HTTP requests are relayed to ``UPSTREAM`` (any host);
    ``CONNECT`` is refused with 403 and recorded."""
    seen: list[bytes] = []
    upstream: dict[str, tuple[str, int]] = {}

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await _read_request(reader)) is not None:
                seen.append(request)
                head, _, body = request.partition(b"\r\n\r\n")
                start, *lines = head.split(b"\r\n")
                method, target, version = start.split(b" ")
                if require_auth is not None and (
                    f"proxy-authorization: {require_auth}".lower().encode() not in head.lower()
                ):
                    writer.write(_answer("407 Proxy Authentication Required", b""))
                    continue
                if method == b"CONNECT":
                    writer.write(_answer("403 Forbidden", b""))
                    await writer.drain()
                    return
                path = b"/" + target.split(b"/", 3)[3]
                kept = [
                    line for line in lines if not line.lower().startswith(b"proxy-authorization")
                ]
                host, port = upstream["to"]
                up_reader, up_writer = await asyncio.open_connection(host, port)
                up_writer.write(b"\r\n".join([b" ".join([method, path, version]), *kept]))
                up_writer.write(b"\r\n\r\n" + body)
                answer = await up_reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in answer.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                writer.write(answer + await up_reader.readexactly(length))
                up_writer.close()
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.upstream = upstream  # type: ignore[attr-defined]
    return server, f"http://127.0.0.1:{port}", seen


async def test_http_proxy_from_the_environment_carries_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def ok(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("200 OK", b'{"via":"proxy"}', "Content-Type: application/json"))

    origin, origin_base, reached = await _serve(ok)
    proxy, proxy_url, relayed = await _proxy(require_auth="Basic dXNlcjpwQHNz")  # user:p@ss
    proxy.upstream["to"] = ("127.0.0.1", int(origin_base.rsplit(":", 1)[1]))  # type: ignore[attr-defined]
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url.replace("http://", "http://user:p%40ss@"))
    # twilio.invalid never resolves: only a proxy can answer for it.
    async with origin, proxy, _http("http://api.twilio.invalid", []) as http:
        body = await http.request("memory", "GET", "/v1/Stores", params={"a": "b"})
    assert body.json() == {"via": "proxy"}
    assert relayed[0].startswith(b"GET http://api.twilio.invalid/memory/v1/Stores?a=b HTTP/1.1")
    assert reached[0].startswith(b"GET /memory/v1/Stores?a=b HTTP/1.1")
    assert b"proxy-authorization" not in reached[0].lower()
    assert b"authorization: basic " in reached[0].lower()


async def test_https_proxy_is_asked_to_connect_and_a_refusal_is_unsent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, proxy_url, relayed = await _proxy()
    monkeypatch.setenv("HTTPS_PROXY", proxy_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with proxy, _http("https://api.twilio.invalid", []) as http:
        with pytest.raises(TwilioTransportError) as info:
            await http.request("conversations", "POST", "/v2/A", json={}, retry="never")
    assert info.value.request_sent is False
    assert relayed[0].startswith(b"CONNECT api.twilio.invalid:443 HTTP/1.1")


async def test_no_proxy_hosts_go_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    async def ok(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("200 OK", b"{}"))

    origin, origin_base, reached = await _serve(ok)
    proxy, proxy_url, relayed = await _proxy()
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    async with origin, proxy, _http(origin_base, []) as http:
        await http.request("api", "GET", "/direct")
    assert len(reached) == 1
    assert relayed == []
