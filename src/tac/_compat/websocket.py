"""``WebSocketManager``: which WebSocket carries which conversation (the reference SDK's class).

opentac's voice channel keeps its own per-call registry; this class is for code written against
the reference that tracks sockets itself.
"""

from __future__ import annotations

from tac._compat.websocket_protocol import WebSocketProtocol

__all__ = ["WebSocketManager"]


class WebSocketManager:
    """A map of conversation id → WebSocket; remove an entry when its call ends."""

    def __init__(self) -> None:
        self._websockets: dict[str, WebSocketProtocol] = {}

    def add_websocket(self, conversation_id: str, websocket: WebSocketProtocol) -> None:
        """Remember ``websocket`` for ``conversation_id`` (replacing any earlier one)."""
        self._websockets[conversation_id] = websocket

    def get_websocket(self, conversation_id: str) -> WebSocketProtocol | None:
        """The WebSocket of ``conversation_id``, or ``None``."""
        return self._websockets.get(conversation_id)

    def has_websocket(self, conversation_id: str) -> bool:
        """Whether a WebSocket is known for ``conversation_id``."""
        return conversation_id in self._websockets

    def remove_websocket(self, conversation_id: str) -> None:
        """Forget ``conversation_id``'s WebSocket (no error when unknown)."""
        self._websockets.pop(conversation_id, None)

    def __len__(self) -> int:
        return len(self._websockets)
