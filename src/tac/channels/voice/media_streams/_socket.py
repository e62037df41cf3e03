"""A lean WebSocket client for model sessions: websockets' sans-I/O protocol on an asyncio
transport.

A model session carries a message each way per 20 ms per call, so the per-message cost of the
client is most of the bridge's: ``websockets.asyncio``'s connection (an async context manager,
a message assembler and a future per message) costs several times what the protocol itself
does. Here a message is parsed and queued in ``data_received`` and a send is one
``transport.write`` without suspending (unless the peer stops reading). No compression, no
client keepalive pings (the server's are answered), no HTTP proxy, no redirects.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from typing import cast

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidState
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["ModelSocket", "open_model_socket"]

_CLOSE_TIMEOUT = 5.0
_INBOX_HIGH = 256  # messages queued for a consumer that does not keep up: stop reading
_OPEN = State.OPEN
_TEXT = Opcode.TEXT
_CONT = Opcode.CONT


class ModelSocket(asyncio.Protocol):
    """One client WebSocket. Text messages land in :attr:`inbox`; :meth:`wait` waits for more."""

    def __init__(self, protocol: ClientProtocol) -> None:
        self.protocol = protocol
        self.transport: asyncio.Transport | None = None
        self.inbox: deque[str] = deque()
        """Text messages received and not yet taken (``popleft`` them)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._parts: list[bytes | bytearray | memoryview] | None = None  # a fragmented text message
        self._reading_paused = False
        self._close_scheduled = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._flush()

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        protocol.receive_data(data)
        writes = protocol.data_to_send()  # pongs, the close reply
        if writes:
            self._write(writes)
        received = False
        for event in protocol.events_received():
            if type(event) is Frame:
                opcode = event.opcode
                if opcode is _TEXT:
                    if event.fin:
                        self.inbox.append(str(event.data, "utf-8"))
                        received = True
                    else:
                        self._parts = [event.data]
                elif opcode is _CONT and self._parts is not None:
                    self._parts.append(event.data)
                    if event.fin:
                        self.inbox.append(str(b"".join(self._parts), "utf-8"))
                        self._parts = None
                        received = True
            elif isinstance(event, Response):
                self._handshake_done()
        if protocol.handshake_exc is not None and not self.opened.done():
            self.opened.set_exception(protocol.handshake_exc)
        if protocol.state is not _OPEN and self.opened.done():
            if not self._close_scheduled and protocol.close_expected():
                self._close_scheduled = True  # the server closes TCP first, or we do
                assert self.transport is not None
                self._loop.call_later(_CLOSE_TIMEOUT, self.transport.close)
            received = True  # the reader must see the end
        if received:
            if len(self.inbox) > _INBOX_HIGH and not self._reading_paused:
                self._reading_paused = True
                assert self.transport is not None
                self.transport.pause_reading()
            self._wake()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("the model closed the connection"))
        if not self.lost.done():
            self.lost.set_result(None)
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)
        self._wake()

    def pause_writing(self) -> None:
        self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- the socket ------------------------------------------------------------------------------

    def _handshake_done(self) -> None:
        if self.protocol.handshake_exc is None and not self.opened.done():
            self.opened.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _write(self, writes: list[bytes]) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        for data in writes:
            if data:
                transport.write(data)
            elif transport.can_write_eof():
                transport.write_eof()

    def _flush(self) -> None:
        writes = self.protocol.data_to_send()
        if writes:
            self._write(writes)

    @property
    def open(self) -> bool:
        """Whether messages can still be sent."""
        return self.protocol.state is _OPEN

    async def wait(self) -> bool:
        """Wait for :attr:`inbox` to have a message; ``False`` once none will come."""
        if self._reading_paused:  # the consumer caught up
            self._reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        while not self.inbox:
            if self.protocol.state is not _OPEN or self.lost.done():
                return False
            waiter = self._waiter = self._loop.create_future()
            await waiter
        return True

    def send_now(self, text: str) -> None:
        """Write a text message at once; raises ``InvalidState`` once the socket closed."""
        protocol = self.protocol
        protocol.send_text(text.encode())
        transport = self.transport
        if transport is None or transport.is_closing():
            raise InvalidState("the connection is closed")
        for data in protocol.data_to_send():
            transport.write(data)

    async def send(self, text: str) -> None:
        """:meth:`send_now`, then wait while the peer is not reading."""
        self.send_now(text)
        drain = self._drain
        if drain is not None:
            await asyncio.shield(drain)
            if self.lost.done():
                raise ConnectionClosed(self.protocol.close_rcvd, self.protocol.close_sent)

    async def close(self) -> None:
        """The closing handshake (waits up to 5 s for the server to close), then the socket."""
        transport = self.transport
        if transport is None:
            return
        if self.protocol.state is _OPEN:
            self.protocol.send_close(1000)
            self._flush()
        if not self.lost.done():
            try:
                await asyncio.wait_for(asyncio.shield(self.lost), _CLOSE_TIMEOUT)
            except asyncio.TimeoutError:
                transport.abort()
        self._wake()


async def open_model_socket(
    url: str, headers: Mapping[str, str], *, open_timeout: float = 10.0
) -> ModelSocket:
    """Connect to ``url`` (``ws://`` or ``wss://``) sending ``headers``; raises on a refusal."""
    uri = parse_uri(url)
    protocol = ClientProtocol(uri, max_size=None)
    request = protocol.connect()
    for name, value in headers.items():
        if name in request.headers:
            del request.headers[name]
        request.headers[name] = value
    protocol.send_request(request)
    loop = asyncio.get_running_loop()
    context = ssl.create_default_context() if uri.secure else None

    async def connect() -> ModelSocket:
        _, socket = await loop.create_connection(
            lambda: ModelSocket(protocol),
            uri.host,
            uri.port,
            ssl=context,
            server_hostname=uri.host if context is not None else None,
        )
        try:
            await socket.opened
        except BaseException:
            if socket.transport is not None:
                socket.transport.abort()
            raise
        return socket

    return await asyncio.wait_for(connect(), open_timeout)
