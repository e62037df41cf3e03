"""WebSocket frame headers (RFC 6455 §5.2), for opentac's two lean WebSocket paths: the server
side of Twilio's connection (``tac.server._websocket``) and the client to a realtime model
(``tac.channels.voice.media_streams._socket``)."""

from __future__ import annotations

__all__ = ["frame_head", "frame_length"]


def frame_head(first: int, size: int, *, masked: bool) -> bytes:
    """A frame's first bytes up to its length field: ``first`` is FIN, the RSV bits and the
    opcode; ``masked`` sets the mask bit (the key, if any, follows)."""
    mask = 0x80 if masked else 0
    if size < 126:
        return bytes((first, mask | size))
    if size < 65536:
        return bytes((first, mask | 126)) + size.to_bytes(2, "big")
    return bytes((first, mask | 127)) + size.to_bytes(8, "big")


def frame_length(buffer: bytearray) -> tuple[int, int] | None:
    """``(offset, size)`` of the frame at the start of ``buffer``: where its length field ends
    (its masking key, if masked, starts there) and its payload's size; ``None`` until the
    length field is all there."""
    available = len(buffer)
    if available < 2:
        return None
    size = buffer[1] & 0x7F
    if size < 126:
        return 2, size
    if size == 126:
        return (4, int.from_bytes(buffer[2:4], "big")) if available >= 4 else None
    return (10, int.from_bytes(buffer[2:10], "big")) if available >= 10 else None
