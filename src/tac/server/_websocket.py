"""uvicorn's sans-I/O WebSocket protocol with a short path for plain text messages.

A Media Streams call carries a text message each way every 20 ms, and uvicorn's
``websockets-sansio`` protocol spends more on each than the bridge itself: websockets' frame
parser (generators per frame), a ``Frame`` object and its serialisation on the way out, and a
``pause_reading``/``resume_reading`` pair around every message it queues.

Here, once the handshake is done, the incoming bytes are cut into whole frames: a masked,
unfragmented text frame is unmasked and queued directly; any other frame (control frames,
fragments, binary messages) is handed whole to websockets and uvicorn, so their parser only
ever sees whole frames and what they do with them is unchanged. Oversized, unmasked or
otherwise invalid frames, a negotiated compression and everything after a close go to them as
received. A text message is written as one unmasked frame. Reading pauses once
:data:`_QUEUE_HIGH` messages wait for the app instead of around every message.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from tac._wsframes import frame_head, frame_length

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - websockets built without its C extension
    from websockets.utils import apply_mask

__all__ = ["TACWebSocketProtocol"]

_QUEUE_HIGH = 16  # messages received and not yet taken by the app: then stop reading
_MAX_HEAD = 65536  # bytes kept before the handshake is done; past them, websockets reads all
_TEXT = 0x81  # FIN, no extension bits, opcode 1


class TACWebSocketProtocol(WebSocketsSansIOProtocol):
    """``uvicorn.Config(ws=TACWebSocketProtocol)``: uvicorn's protocol, cheaper per message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = bytearray()  # bytes not handed on yet: the head's, a frame's start
        self._head_done = False  # the request head went to websockets, nothing after it
        self._raw = False  # everything goes to websockets as received from now on

    def _framing(self) -> bool:
        """Whether the bytes can be cut into frames here: open, no extension, not closing."""
        return (
            self.handshake_complete
            and not self.close_sent
            and self.initial_response is None
            and self.conn.state is State.OPEN
            and not self.conn.extensions
        )

    def _hand_on(self, data: bytes) -> None:
        """From now on websockets reads everything (its parser is at a frame's start)."""
        self._raw = True
        pending = bytes(self._pending) + data
        self._pending.clear()
        super().data_received(pending)

    def data_received(self, data: bytes) -> None:
        if self._raw:
            super().data_received(data)
            return
        buffer = self._pending
        buffer += data
        if not self._head_done:  # websockets gets the head alone, frames stay here
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_HEAD:
                    self._hand_on(b"")  # websockets refuses it
                return
            head = bytes(buffer[: end + 4])
            del buffer[: end + 4]
            self._head_done = True
            super().data_received(head)
        if not self.handshake_complete and not self.close_sent:
            if len(buffer) > _MAX_HEAD:  # a client that does not wait for the answer
                self._hand_on(b"")
            return  # frames sent before the app accepted: read once it has (send)
        if not self._framing():
            self._hand_on(b"")
            return
        self._read_frames()

    def _read_frames(self) -> None:
        buffer = self._pending
        queue = self.queue
        conn = self.conn
        max_size = self.config.ws_max_size
        while True:
            length = frame_length(buffer)
            if length is None:
                break
            offset, size = length
            first = buffer[0]
            if not buffer[1] & 0x80 or (max_size is not None and size > max_size):
                self._hand_on(b"")  # unmasked or too big: websockets fails the connection
                return
            start = offset + 4  # past the masking key
            end = start + size
            if len(buffer) < end:
                break
            if first == _TEXT and conn.cur_size is None:  # a whole text message
                try:
                    message = apply_mask(
                        bytes(buffer[start:end]), bytes(buffer[start - 4 : start])
                    ).decode()
                except UnicodeDecodeError:
                    self._hand_on(b"")  # websockets and uvicorn fail the connection (1007)
                    return
                del buffer[:end]
                event: Any = {"type": "websocket.receive", "text": message}
                queue.put_nowait(event)
                continue
            frame = bytes(buffer[:end])
            del buffer[:end]
            super().data_received(frame)  # a whole frame: websockets' parser ends between two
            if not self._framing():  # a close, or a failure: websockets reads what follows
                self._hand_on(b"")
                return
        if not self.read_paused and queue.qsize() >= _QUEUE_HIGH:
            self.read_paused = True
            self.transport.pause_reading()

    async def send(self, message: Any) -> None:
        text = message.get("text")
        if (
            text is not None
            and message["type"] == "websocket.send"
            and message.get("bytes") is None
            and self.handshake_complete
            and not self.close_sent
            and not self.disconnected
            and self.initial_response is None
            and self.writable.is_set()
            and self.conn.state is State.OPEN
            and not self.conn.extensions
        ):
            data = text.encode()
            self.transport.write(frame_head(_TEXT, len(data), masked=False) + data)
            return
        accepting = not self.handshake_complete
        await super().send(message)
        if accepting and self.handshake_complete and self._pending and not self._raw:
            self.data_received(b"")  # frames the client sent before the app accepted
