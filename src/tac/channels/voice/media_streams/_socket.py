"""A lean WebSocket client for model sessions.

A model session carries a message each way per 20 ms per call, so the per-message cost of the
client is much of the bridge's: ``websockets.asyncio``'s connection (an async context manager,
a message assembler and a future per message) and even its sans-I/O frame parser cost several
times what a text frame needs. Here websockets' ``ClientProtocol`` does the opening handshake
(request, response checks); after it, frames are read and written here (RFC 6455: text
messages, fragments, ping/pong, the closing handshake). A message is queued in
``data_received``; a send is one ``transport.write`` and suspends only while the peer is not
reading. No compression, no client keepalive pings (the server's are answered), no HTTP proxy,
no redirects.
"""

from __future__ import annotations

import asyncio
import random
import ssl
from collections import deque
from collections.abc import Mapping
from typing import cast

from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidState
from websockets.protocol import State
from websockets.uri import parse_uri

from tac._wsframes import frame_head, frame_length

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

__all__ = ["ModelSocket", "open_model_socket"]

_CLOSE_TIMEOUT = 5.0
_INBOX_HIGH = 256  # messages queued for a consumer that does not keep up: stop reading
_MAX_HEAD = 65536  # the handshake response's head
_random_bits = random.Random().getrandbits  # masking keys (aiohttp's choice too)


def _frame(first: int, data: bytes) -> bytes:
    """A masked client frame: ``first`` is FIN and the opcode."""
    key = _random_bits(32).to_bytes(4, "big")
    return frame_head(first, len(data), masked=True) + key + apply_mask(data, key)


class ModelSocket(asyncio.Protocol):
    """One client WebSocket. Text messages land in :attr:`inbox`; :meth:`wait` waits for more."""

    def __init__(self, handshake: ClientProtocol) -> None:
        self.handshake = handshake
        self.transport: asyncio.Transport | None = None
        self.inbox: deque[str] = deque()
        """Text messages received and not yet taken (``popleft`` them)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self.opened: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.open = False
        """Whether messages can be sent (the handshake done, no close sent or received)."""
        self.close_code: int | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._parts: list[bytes] = []  # a fragmented message: its kind and its text so far
        self._kind = 0
        self._fragmented = False
        self._reading_paused = False
        self._head_read = False
        self._ended = False  # no message will come any more

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        for data in self.handshake.data_to_send():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self.open:
            self._buffer += data
            self._read_frames()
        elif not self.opened.done():
            self._buffer += data
            self._read_handshake()
            if self.open:
                self._read_frames()
        # else: closing; what comes before the server closes TCP is dropped

    def eof_received(self) -> bool | None:
        if not self.opened.done():  # a refusal whose body ends with the connection
            self.handshake.receive_eof()
            self._handshake_checked()
        return None  # the transport closes; connection_lost ends the reader

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("the model closed the connection"))
        if not self.lost.done():
            self.lost.set_result(None)
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)
        self._end()

    def pause_writing(self) -> None:
        self._drain = self._loop.create_future()

    def resume_writing(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- reading ---------------------------------------------------------------------------------

    def _read_handshake(self) -> None:
        """websockets checks the response; the bytes after its head are frames."""
        buffer = self._buffer
        protocol = self.handshake
        if not self._head_read:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    self._refuse(ConnectionError("the handshake response is too long"))
                return
            self._head_read = True
            head = bytes(buffer[: end + 4])
            del buffer[: end + 4]
            protocol.receive_data(head)
        if protocol.state is not State.OPEN and protocol.handshake_exc is None and buffer:
            protocol.receive_data(bytes(buffer))  # a refusal's body: websockets reads it
            buffer.clear()
        self._handshake_checked()

    def _handshake_checked(self) -> None:
        protocol = self.handshake
        protocol.events_received()
        if protocol.handshake_exc is not None:
            self._refuse(protocol.handshake_exc)
        elif protocol.state is State.OPEN:
            self.open = True
            self.opened.set_result(None)

    def _refuse(self, exc: BaseException) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc)
        assert self.transport is not None
        self.transport.close()

    def _read_frames(self) -> None:
        buffer = self._buffer
        inbox = self.inbox
        received = False
        while True:
            length = frame_length(buffer)
            if length is None:
                break
            start, size = length
            first = buffer[0]
            if buffer[1] & 0x80 or first & 0x70:  # a masked server frame, or an extension's bit
                self._fail(1002)
                return
            end = start + size
            if len(buffer) < end:
                break
            payload = bytes(buffer[start:end])
            del buffer[:end]
            opcode = first & 0x0F
            fin = first & 0x80
            try:
                if opcode == 1 and fin and not self._fragmented:  # the hot path
                    inbox.append(payload.decode())
                    received = True
                elif opcode < 3:  # a continuation, or text or binary
                    if (opcode == 0) != self._fragmented:
                        self._fail(1002)  # a fragment out of sequence
                        return
                    if opcode:
                        self._kind = opcode
                    self._fragmented = not fin
                    if self._kind == 1:  # binary messages mean nothing to the bridge
                        self._parts.append(payload)
                        if fin:
                            inbox.append(b"".join(self._parts).decode())
                            received = True
                    if fin:
                        self._parts = []
                elif opcode == 9:
                    self._control(0x8A, payload)  # pong
                elif opcode == 8:
                    self._closed_by_peer(payload)
                    return
                elif opcode != 10:
                    self._fail(1002)
                    return
            except UnicodeDecodeError:
                self._fail(1007)
                return
        if received:
            if len(inbox) > _INBOX_HIGH and not self._reading_paused:
                self._reading_paused = True
                assert self.transport is not None
                self.transport.pause_reading()
            self._wake()

    def _closed_by_peer(self, payload: bytes) -> None:
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
        if self.open:  # echo it; the server then closes TCP
            self._control(0x88, payload[:2])
            self.open = False
        self.close_code = code
        self._buffer.clear()
        self._end()
        transport = self.transport
        assert transport is not None
        self._loop.call_later(_CLOSE_TIMEOUT, transport.close)

    def _fail(self, code: int) -> None:
        if self.open:
            self._control(0x88, code.to_bytes(2, "big"))
            self.open = False
        self.close_code = code
        self._buffer.clear()
        self._end()
        assert self.transport is not None
        self.transport.close()

    def _control(self, first: int, payload: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(_frame(first, payload))

    def _end(self) -> None:
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> bool:
        """Wait for :attr:`inbox` to have a message; ``False`` once none will come."""
        if self._reading_paused:  # the consumer caught up
            self._reading_paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        while not self.inbox:
            if self._ended:
                return False
            waiter = self._waiter = self._loop.create_future()
            await waiter
        return True

    # -- writing ---------------------------------------------------------------------------------

    def send_now(self, text: str) -> None:
        """Write a text message at once; raises ``InvalidState`` once the socket closed."""
        transport = self.transport
        if not self.open or transport is None or transport.is_closing():
            raise InvalidState("the connection is closed")
        transport.write(_frame(0x81, text.encode()))

    @property
    def paused(self) -> bool:
        """Whether the peer stopped reading (then :meth:`drain` before writing more)."""
        return self._drain is not None

    async def drain(self) -> None:
        """Wait until the peer reads again; raises ``ConnectionClosed`` if the socket is lost."""
        drain = self._drain
        if drain is not None:
            await asyncio.shield(drain)
        if self.lost.done():
            raise ConnectionClosed(None, None)

    async def send(self, text: str) -> None:
        """:meth:`send_now`, then wait while the peer is not reading."""
        self.send_now(text)
        if self._drain is not None:
            await self.drain()

    async def close(self) -> None:
        """The closing handshake (waits up to 5 s for the server to close), then the socket."""
        transport = self.transport
        if transport is None:
            return
        if self.open:
            self._control(0x88, (1000).to_bytes(2, "big"))
            self.open = False
        if not self.lost.done():
            try:
                await asyncio.wait_for(asyncio.shield(self.lost), _CLOSE_TIMEOUT)
            except asyncio.TimeoutError:
                transport.abort()
        self._end()


async def open_model_socket(
    url: str, headers: Mapping[str, str], *, open_timeout: float = 10.0
) -> ModelSocket:
    """Connect to ``url`` (``ws://`` or ``wss://``) sending ``headers``; raises on a refusal."""
    uri = parse_uri(url)
    handshake = ClientProtocol(uri, max_size=None)
    request = handshake.connect()
    for name, value in headers.items():
        if name in request.headers:
            del request.headers[name]
        request.headers[name] = value
    handshake.send_request(request)
    loop = asyncio.get_running_loop()
    context = ssl.create_default_context() if uri.secure else None

    async def connect() -> ModelSocket:
        _, socket = await loop.create_connection(
            lambda: ModelSocket(handshake),
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
