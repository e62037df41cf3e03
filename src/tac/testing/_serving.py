"""What the scripted fakes' servers share: a loopback socket, and the ``with`` / ``async with``
block that starts the server, stops it, and checks the script was used up."""

from __future__ import annotations

import asyncio
import socket
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Generic, Protocol, TypeVar

START_TIMEOUT = 10.0
"""Seconds a fake's server may take to start or stop."""


class _Scripted(Protocol):
    def assert_complete(self) -> None: ...


M = TypeVar("M", bound=_Scripted)


def bind_loopback(host: str, port: int) -> tuple[socket.socket, str, int]:
    """A TCP socket bound to ``host:port`` (port 0: a free one), and the host and port it got."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_host, bound_port = sock.getsockname()[:2]
    return sock, bound_host, bound_port


class LoopbackServing(ABC, Generic[M]):
    """The running server of one fake model, sync or async context manager: leaving a block
    stops it and, when ``check`` and the block raised nothing, calls ``assert_complete``."""

    def __init__(self, model: M, host: str, port: int, check: bool) -> None:
        self._model = model
        self._host = host
        self._port = port
        self._check = check

    @abstractmethod
    def start(self) -> M:
        """Start serving (blocks until the server listens); the model."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving (blocks until the server thread ends)."""

    def __enter__(self) -> M:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._check and exc_type is None:
            self._model.assert_complete()

    async def __aenter__(self) -> M:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)
        if self._check and exc_type is None:
            self._model.assert_complete()
