"""The lean model-side WebSocket client against a real ``websockets`` server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import InvalidState, InvalidStatus
from websockets.utils import accept_key

from tac.channels.voice.media_streams._socket import ModelSocket, open_model_socket

Handler = Callable[[ServerConnection], Awaitable[None]]


@asynccontextmanager
async def _server(handler: Handler, **options: Any) -> AsyncIterator[str]:
    async with serve(handler, "127.0.0.1", 0, **options) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/realtime?model=m"


async def _messages(socket: ModelSocket) -> list[str]:
    found = []
    while socket.inbox or await socket.wait():
        found.append(socket.inbox.popleft())
    return found


async def test_headers_go_out_messages_come_back_and_the_server_close_ends_them() -> None:
    seen: dict[str, Any] = {}

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen["path"] = ws.request.path
        seen["authorization"] = ws.request.headers["Authorization"]
        seen["agent"] = ws.request.headers.get_all("User-Agent")
        seen["got"] = [await ws.recv(), await ws.recv(), await ws.recv()]
        await ws.send("one")
        await ws.send([b"binary ", b"fragments"])  # ignored
        await ws.send(b"binary")  # ignored
        await ws.send(["fragmented ", "message"])  # a message in three frames
        await asyncio.wait_for(await ws.ping(b"still there?"), 5)  # answered by the client
        await ws.send("é" * 200)  # a 16-bit length
        await ws.send("x" * 70_000)  # a 64-bit length
        await ws.close()

    async with _server(handler) as url:
        socket = await open_model_socket(
            url, {"Authorization": "Bearer sk-x", "User-Agent": "opentac/test"}
        )
        socket.send_now("hello")
        await socket.send('{"type":"x"}')
        await socket.send("y" * 70_000)
        messages = await asyncio.wait_for(_messages(socket), 5)
        assert messages == ["one", "fragmented message", "é" * 200, "x" * 70_000]
        assert socket.close_code == 1000
        assert not socket.open
        with pytest.raises(InvalidState):
            socket.send_now("too late")
        await socket.close()
    assert seen == {
        "path": "/v1/realtime?model=m",
        "authorization": "Bearer sk-x",
        "agent": ["opentac/test"],
        "got": ["hello", '{"type":"x"}', "y" * 70_000],
    }


async def test_close_is_a_handshake_and_ends_the_reader() -> None:
    closed = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:
            pass
        closed.set()

    async with _server(handler) as url:
        socket = await open_model_socket(url, {})
        reader = asyncio.ensure_future(_messages(socket))
        await socket.close()
        assert await asyncio.wait_for(reader, 5) == []
        await asyncio.wait_for(closed.wait(), 5)
        assert socket.lost.done()
        await socket.close()  # idempotent


async def test_a_refused_handshake_raises() -> None:
    async def handler(ws: ServerConnection) -> None:  # pragma: no cover - never accepted
        await ws.close()

    def refuse(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(401, "no key\n")

    async with _server(handler, process_request=refuse) as url:
        with pytest.raises(InvalidStatus):
            await open_model_socket(url, {})


async def test_a_consumer_that_falls_behind_pauses_reading_then_gets_everything() -> None:
    async def handler(ws: ServerConnection) -> None:
        for index in range(1000):
            await ws.send(f"m{index}")
        await ws.close()

    async with _server(handler) as url:
        socket = await open_model_socket(url, {})
        await asyncio.sleep(0.2)  # let the server get ahead
        messages = await asyncio.wait_for(_messages(socket), 5)
        assert messages == [f"m{index}" for index in range(1000)]


async def _raw_server(answer: Callable[[bytes], bytes]) -> tuple[asyncio.Server, str]:
    """A server that answers the handshake request with ``answer(key)`` in one write."""

    async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(answer(key))
        await reader.read()  # until the client goes
        writer.close()

    server = await asyncio.start_server(serve_one, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"ws://127.0.0.1:{port}/"


def _accepted(key: bytes) -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key.decode()).encode() + b"\r\n\r\n"
    )


async def test_frames_in_the_handshake_segment_are_read_and_a_masked_one_fails() -> None:
    server, url = await _raw_server(
        lambda key: (
            _accepted(key)
            + b"\x81\x05hello"  # a text frame right behind the response
            + b"\x81\x85\x00\x00\x00\x00oops!"
        )  # a masked frame: servers must not mask
    )
    async with server:
        socket = await open_model_socket(url, {})
        assert await asyncio.wait_for(_messages(socket), 5) == ["hello"]
        assert socket.close_code == 1002
        assert not socket.open


async def test_a_refusal_with_its_body_in_the_same_segment_raises_its_status() -> None:
    server, url = await _raw_server(
        lambda key: b"HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope"
    )
    async with server:
        with pytest.raises(InvalidStatus) as refused:
            await open_model_socket(url, {})
        assert refused.value.response.status_code == 403


async def test_a_continuation_without_a_message_fails_the_connection() -> None:
    server, url = await _raw_server(lambda key: _accepted(key) + b"\x80\x03odd")
    async with server:
        socket = await open_model_socket(url, {})
        assert await asyncio.wait_for(_messages(socket), 5) == []
        assert socket.close_code == 1002
