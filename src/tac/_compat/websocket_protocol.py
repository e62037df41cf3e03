"""The WebSocket shape the reference SDK's voice channel is written against.

:class:`WebSocketProtocol` is what :class:`tac.server.FastAPIWebSocketAdapter` offers;
:meth:`tac.channels.voice.VoiceChannel.handle_websocket` takes a Starlette/FastAPI WebSocket or
that adapter.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from tac._errors import TACError

__all__ = ["WebSocketDisconnectError", "WebSocketProtocol"]


class WebSocketDisconnectError(TACError):
    """The peer closed the WebSocket."""


@runtime_checkable
class WebSocketProtocol(Protocol):
    """An accepted-on-demand WebSocket carrying JSON in and text out."""

    async def accept(self) -> None: ...

    async def receive_json(self) -> Any: ...

    async def send_text(self, data: str) -> None: ...

    async def close(self) -> None: ...
