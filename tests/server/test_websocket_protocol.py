"""TACWebSocketProtocol (uvicorn's sans-I/O WebSocket with a short path for text) on loopback.

A real uvicorn server configured by ``uvicorn_config`` serves an echo app; a raw socket plays
the client so that frames can be split, batched, fragmented or malformed at will. Every test
runs against uvicorn's own protocol too: the short path must not change what a client sees.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from tests._ports import free_port
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from tac.server import TACServerConfig
from tac.server._websocket import TACWebSocketProtocol
from tac.server.limits import uvicorn_config

pytestmark = pytest.mark.integration


@pytest.fixture(params=[TACWebSocketProtocol, WebSocketsSansIOProtocol], ids=["tac", "uvicorn"])
def ws(request: pytest.FixtureRequest) -> type[Any]:
    protocol: type[Any] = request.param
    return protocol


class Echo:
    """An app echoing each message (``close:<code>`` makes it close); it records what it saw."""

    def __init__(self) -> None:
        self.disconnect_code: int | None = None
        self.slow = 0.0
        self.accept_delay = 0.0
        self.app = Starlette(routes=[WebSocketRoute("/ws", self.endpoint)])

    async def endpoint(self, websocket: WebSocket) -> None:
        await asyncio.sleep(self.accept_delay)
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    self.disconnect_code = message.get("code")
                    return
                if self.slow:
                    await asyncio.sleep(self.slow)
                text = message.get("text")
                if text is not None and text.startswith("close:"):
                    await websocket.close(code=int(text[6:]))
                    return
                if text is not None:
                    await websocket.send_text(text)
                else:
                    await websocket.send_bytes(message["bytes"])
        except WebSocketDisconnect as exc:
            self.disconnect_code = exc.code


@asynccontextmanager
async def served(ws: type[Any], **settings: Any) -> AsyncIterator[tuple[Echo, int]]:
    echo = Echo()
    port = free_port()
    config = uvicorn_config(
        echo.app,
        TACServerConfig(port=port, host="127.0.0.1"),
        log_level="warning",
        ws=ws,
        **settings,
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    try:
        for _ in range(1000):
            if server.started:
                break
            await asyncio.sleep(0.01)
        yield echo, port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def frame(
    opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True, rsv: int = 0
) -> bytes:
    """A client frame (masked with a random key unless ``masked`` is false)."""
    first = (0x80 if fin else 0) | rsv | opcode
    size = len(payload)
    bit = 0x80 if masked else 0
    if size < 126:
        head = bytes((first, bit | size))
    elif size < 65536:
        head = bytes((first, bit | 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((first, bit | 127)) + size.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def text(value: str, **kwargs: Any) -> bytes:
    return frame(0x1, value.encode(), **kwargs)


class Client:
    """A raw WebSocket client: writes bytes as given, reads server frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self) -> tuple[int, bytes]:
        """The next server frame: (opcode, payload); server frames are never masked."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 10)
        assert not second & 0x80, "a server frame was masked"
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await self.reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await self.reader.readexactly(8), "big")
        payload = await asyncio.wait_for(self.reader.readexactly(size), 10)
        return first & 0x0F, payload

    async def read_text(self) -> str:
        opcode, payload = await self.read()
        assert opcode == 0x1, (opcode, payload)
        return payload.decode()

    async def close_code(self) -> int:
        """The code of the close frame the server sends next (text frames before it skipped)."""
        while True:
            opcode, payload = await self.read()
            if opcode == 0x8:
                return int.from_bytes(payload[:2], "big")


@asynccontextmanager
async def connected(port: int) -> AsyncIterator[Client]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    try:
        yield Client(reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


def test_uvicorn_config_serves_websockets_with_the_short_path() -> None:
    app = Starlette()
    assert uvicorn_config(app, TACServerConfig()).ws is TACWebSocketProtocol
    assert uvicorn_config(app, TACServerConfig(), ws="websockets-sansio").ws is (
        TACWebSocketProtocol
    )
    assert uvicorn_config(app, TACServerConfig(), ws="wsproto").ws == "wsproto"


async def test_text_split_anywhere_or_batched_arrives_whole_and_in_order(ws: type[Any]) -> None:
    messages = ["a", "é" * 70, "x" * 300, "y" * 70000, '{"event":"media"}']
    async with served(ws) as (_, port), connected(port) as client:
        data = b"".join(text(m) for m in messages)
        for i in range(0, len(data), 7):  # 7 bytes at a time: every header split somewhere
            await client.write(data[i : i + 7])
        assert [await client.read_text() for _ in messages] == messages
        await client.write(data)  # all in one write
        assert [await client.read_text() for _ in messages] == messages


@pytest.mark.parametrize("step", [1, 2, 3, 5])
async def test_every_kind_of_frame_split_anywhere(ws: type[Any], step: int) -> None:
    data = (
        text("one")
        + frame(0x9, b"ping")
        + frame(0x1, b"fr", fin=False)
        + frame(0x0, b"ag", fin=False)
        + frame(0xA, b"unasked pong")
        + frame(0x0, b"ment")
        + frame(0x2, b"bin")
        + text("two" * 50)
    )
    async with served(ws) as (_, port), connected(port) as client:
        for i in range(0, len(data), step):
            await client.write(data[i : i + step])
            await asyncio.sleep(0)
        assert await client.read_text() == "one"
        assert await client.read() == (0xA, b"ping")
        assert await client.read_text() == "fragment"
        assert await client.read() == (0x2, b"bin")
        assert await client.read_text() == "two" * 50


async def test_frames_sent_before_the_app_accepts_are_read_once_it_has(ws: type[Any]) -> None:
    async with served(ws) as (echo, port):
        echo.accept_delay = 0.3
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await asyncio.sleep(0.1)  # the head is read; the app has not accepted yet
        writer.write(text("early") + text("bird"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        client = Client(reader, writer)
        try:
            assert [await client.read_text() for _ in range(2)] == ["early", "bird"]
        finally:
            writer.close()


async def test_pings_fragments_and_binary_go_through_websockets(ws: type[Any]) -> None:
    async with served(ws) as (_, port), connected(port) as client:
        await client.write(frame(0x9, b"ping-1") + text("after ping"))
        assert await client.read() == (0xA, b"ping-1")
        assert await client.read_text() == "after ping"
        # a fragmented text message with a ping in its middle, then a plain one
        await client.write(
            frame(0x1, b"frag", fin=False)
            + frame(0x9, b"p2")
            + frame(0x0, b"mented", fin=False)
            + frame(0x0, b"!")
            + text("plain")
        )
        assert await client.read() == (0xA, b"p2")
        assert await client.read_text() == "fragmented!"
        assert await client.read_text() == "plain"
        await client.write(frame(0x2, b"\x00\x01binary") + text("then text"))
        assert await client.read() == (0x2, b"\x00\x01binary")
        assert await client.read_text() == "then text"


async def test_the_closing_handshake_either_way(ws: type[Any]) -> None:
    async with served(ws) as (echo, port):
        async with connected(port) as client:
            await client.write(text("hello"))
            assert await client.read_text() == "hello"
            await client.write(frame(0x8, (1000).to_bytes(2, "big") + b"bye"))
            assert await client.close_code() == 1000
        for _ in range(100):
            if echo.disconnect_code is not None:
                break
            await asyncio.sleep(0.01)
        assert echo.disconnect_code == 1000
        async with connected(port) as client:
            await client.write(text("close:4001"))
            assert await client.close_code() == 4001
            await client.write(frame(0x8, (4001).to_bytes(2, "big")))
            await client.write(text("after close"))  # dropped: the app is past its close
            assert await asyncio.wait_for(client.reader.read(), 10) == b""


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame(0x1, b"\xff\xfe not utf-8"), 1007),
        (text("unmasked", masked=False), 1002),
        (frame(0x1, b"z" * 2048), 1009),
        (frame(0x1, b"rsv", rsv=0x40), 1002),
    ],
    ids=["invalid-utf8", "unmasked", "too-big", "rsv-bit"],
)
async def test_bad_frames_fail_the_connection_as_websockets_does(
    ws: type[Any], data: bytes, code: int
) -> None:
    async with served(ws, ws_max_size=1024) as (_, port), connected(port) as client:
        await client.write(text("ok"))
        assert await client.read_text() == "ok"
        await client.write(data)
        assert await client.close_code() == code


async def test_a_slow_app_gets_every_message_in_order(ws: type[Any]) -> None:
    async with served(ws) as (echo, port), connected(port) as client:
        echo.slow = 0.002
        sent = [f"m{i}" for i in range(200)]
        await client.write(b"".join(text(m) for m in sent))  # far more than the queue's mark
        assert [await client.read_text() for _ in sent] == sent
