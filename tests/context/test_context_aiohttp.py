"""The default transport (aiohttp under httpx) against raw loopback servers.

Each server is a few lines of asyncio so a test can misbehave exactly: close after reading the
request, answer gzip, redirect. What matters most is ``request_sent``: a reply must never be
reported unsent once it may have reached Twilio.
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

from tac._aiohttp import AiohttpTransport, _translate
from tac.context import NotFoundError, TwilioHTTP, TwilioTransportError

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


def _http(base: str, sleeps: list[float]) -> TwilioHTTP:
    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    return TwilioHTTP(api_key="SKx", api_secret="s", api_base_url=base, sleep=sleep)


async def test_default_client_uses_the_aiohttp_transport_and_sends_the_request() -> None:
    async def ok(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("202 Accepted", b'{"id":"a1"}', "Content-Type: application/json"))

    server, base, seen = await _serve(ok)
    async with server, _http(base, []) as http:
        assert isinstance(http.client._transport, AiohttpTransport)
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


async def test_connection_closed_after_the_request_is_reported_sent_and_not_retried() -> None:
    no_sleep: list[float] = []

    async def hang_up(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server, base, seen = await _serve(hang_up)
    async with server, _http(base, no_sleep) as http:
        with pytest.raises(TwilioTransportError) as info:
            await http.request("conversations", "POST", "/v2/A", json={}, retry="unsent_only")
    assert info.value.request_sent is True
    assert len(seen) == 1
    assert no_sleep == []


async def test_refused_connection_is_reported_unsent() -> None:
    no_sleep: list[float] = []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _http(f"http://127.0.0.1:{port}", no_sleep) as http:
        with pytest.raises(TwilioTransportError) as info:
            await http.request("conversations", "POST", "/v2/A", json={}, retry="never")
    assert info.value.request_sent is False


async def test_gzip_answer_is_decoded_and_redirect_is_not_followed() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> None:
        if request.startswith(b"GET /api/moved"):
            writer.write(_answer("301 Moved Permanently", b"", "Location: /api/elsewhere"))
        else:
            packed = gzip.compress(b'{"ok":true}')
            writer.write(_answer("200 OK", packed, "Content-Encoding: gzip"))

    server, base, seen = await _serve(answer)
    async with server, _http(base, []) as http:
        assert await http.request_json("api", "GET", "/zipped") == {"ok": True}
        moved = await http.request("api", "GET", "/moved", accept={301})
    assert moved.status_code == 301
    assert moved.headers["location"] == "/api/elsewhere"
    assert len(seen) == 2


async def test_reason_phrase_and_keep_alive_reuse() -> None:
    async def answer(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("418 Short And Stout", b"nope"))

    server, base, seen = await _serve(answer)
    async with server, _http(base, []) as http:
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


async def test_direct_path_encodes_forms_queries_and_caller_headers_like_httpx() -> None:
    async def ok(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("200 OK", b"{}", "Content-Type: application/json"))

    server, base, seen = await _serve(ok)
    async with server, _http(base, []) as http:
        await http.request(
            "studio",
            "POST",
            "/v2/Flows/FW1/Executions",
            data={"To": "+1 555", "Tag": ["a", "b"], "Flag": True, "Off": False, "Empty": None},
            headers={"content-type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        await http.request("memory", "GET", "/v1/Stores", params={"pageSize": 5, "q": "a b"})
    form_head, _, form_body = seen[0].partition(b"\r\n\r\n")
    assert form_body == b"To=%2B1+555&Tag=a&Tag=b&Flag=true&Off=false&Empty="
    content_types = [
        line for line in form_head.lower().split(b"\r\n") if line.startswith(b"content-type:")
    ]
    assert content_types == [b"content-type: application/x-www-form-urlencoded; charset=utf-8"]
    assert seen[1].startswith(b"GET /memory/v1/Stores?pageSize=5&q=a+b HTTP/1.1")


async def test_direct_path_errors_name_the_request_without_building_it_up_front() -> None:
    async def missing(request: bytes, writer: asyncio.StreamWriter) -> None:
        body = b'{"code": 20404, "message": "not here", "status": 404}'
        writer.write(_answer("404 Not Found", body, "Content-Type: application/json"))

    server, base, _ = await _serve(missing)
    async with server, _http(base, []) as http:
        with pytest.raises(NotFoundError) as info:
            await http.request("conversations", "GET", "/v2/Conversations/conv_1")
        await http.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await http.request("conversations", "GET", "/v2/Conversations/conv_1")
    assert info.value.method == "GET"
    assert info.value.url == f"{base}/conversations/v2/Conversations/conv_1"
    assert info.value.code == 20404


@pytest.mark.parametrize(
    "kwargs",
    [
        {"json": {"text": "olá ✓", "n": 1.5, "none": None, "list": [1, "a"]}},
        {"data": {"To": "+1 555", "Tag": ["a", "b"], "Flag": True, "Empty": None, "N": 3}},
        {"params": {"pageSize": 5, "pageToken": "a/b c", "flag": False}},
        {"json": {}, "headers": {"Idempotency-Key": "k-1", "accept": "text/plain"}},
    ],
)
async def test_direct_path_sends_what_the_httpx_path_sends(kwargs: dict[str, object]) -> None:
    async def ok(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_answer("200 OK", b"{}"))

    def parsed(raw: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
        head, _, body = raw.partition(b"\r\n\r\n")
        start, *lines = head.split(b"\r\n")
        headers = dict(line.lower().split(b": ", 1) for line in lines)
        return start, headers, body

    server, base, seen = await _serve(ok)
    direct = TwilioHTTP(api_key="SKx", api_secret="s", api_base_url=base)
    through_httpx = TwilioHTTP(
        api_key="SKx",
        api_secret="s",
        api_base_url=base,
        client=httpx.AsyncClient(transport=AiohttpTransport()),
    )
    async with server, direct, through_httpx:
        method = "GET" if "params" in kwargs else "POST"
        await direct.request("api", method, "/v1/Things", **kwargs)  # type: ignore[arg-type]
        await through_httpx.request("api", method, "/v1/Things", **kwargs)  # type: ignore[arg-type]
        await through_httpx.client.aclose()
    (start_a, headers_a, body_a), (start_b, headers_b, body_b) = map(parsed, seen)
    assert start_a == start_b
    assert body_a == body_b
    headers_b.pop(b"connection", None)  # httpx says keep-alive; HTTP/1.1 means it anyway
    # httpx also offers br/zstd when those packages are installed; gzip is what matters.
    assert headers_a.pop(b"accept-encoding") == b"gzip, deflate"
    assert b"gzip" in headers_b.pop(b"accept-encoding")
    assert headers_a == headers_b
