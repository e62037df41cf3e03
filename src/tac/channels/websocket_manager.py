"""The reference's import path of ``WebSocketManager`` (see :mod:`tac._compat.websocket`)."""

from tac._compat.websocket import WebSocketManager

__all__ = ["WebSocketManager"]
