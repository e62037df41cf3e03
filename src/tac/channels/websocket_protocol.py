"""The reference's path of ``WebSocketProtocol`` (see :mod:`tac._compat.websocket_protocol`)."""

from tac._compat.websocket_protocol import WebSocketDisconnectError, WebSocketProtocol

__all__ = ["WebSocketDisconnectError", "WebSocketProtocol"]
