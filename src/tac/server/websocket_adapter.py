"""A FastAPI WebSocket seen through :class:`tac.channels.websocket_protocol.WebSocketProtocol`."""

from __future__ import annotations

from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from tac.channels.websocket_protocol import WebSocketDisconnectError

__all__ = ["FastAPIWebSocketAdapter"]


class FastAPIWebSocketAdapter:
    """Wraps a FastAPI ``WebSocket``; a disconnect raises :class:`WebSocketDisconnectError`.

    :meth:`tac.channels.voice.VoiceChannel.handle_websocket` accepts it as it accepts the
    WebSocket itself.
    """

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def accept(self) -> None:
        await self.websocket.accept()

    async def receive_json(self) -> Any:
        try:
            return await self.websocket.receive_json()
        except WebSocketDisconnect:
            raise WebSocketDisconnectError("WebSocket disconnected") from None

    async def send_text(self, data: str) -> None:
        try:
            await self.websocket.send_text(data)
        except WebSocketDisconnect:
            raise WebSocketDisconnectError("WebSocket disconnected") from None

    async def close(self) -> None:
        await self.websocket.close()
