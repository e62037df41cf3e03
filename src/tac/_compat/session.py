"""``tac.session``: the reference's per-call task tracking, for partner connectors.

opentac's own voice channel keeps call state in its per-process registry and durable state in
the ``SessionStore``; it does not use these classes. Connectors written for the reference do
(``ThreadSafeSessionManager`` tracks each call's streaming task so an interrupt can cancel it).
A session lives until its owner calls :meth:`SessionManager.remove_session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from abc import ABC, abstractmethod

from tac.core.logging import get_logger

__all__ = [
    "TASK_CANCELLATION_TIMEOUT",
    "SessionManager",
    "SessionState",
    "ThreadSafeSessionManager",
]

TASK_CANCELLATION_TIMEOUT = 5.0
"""Seconds :meth:`SessionState.cancel_stream_task` waits for a cancelled task to finish."""

_logger = get_logger("session")


class SessionState:
    """One call's state: the streaming task that an interrupt or a new prompt cancels."""

    def __init__(self) -> None:
        self.stream_task: asyncio.Task[object] | None = None

    async def cancel_stream_task(self) -> None:
        """Cancel :attr:`stream_task` if it is running and wait (bounded) for it to finish.

        Never raises: a task that ignores cancellation is logged and left behind after
        :data:`TASK_CANCELLATION_TIMEOUT` seconds; a task that fails while stopping is logged.
        """
        task = self.stream_task
        if task is None or task.done():
            return
        task.cancel()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=TASK_CANCELLATION_TIMEOUT)
        except asyncio.TimeoutError:
            _logger.error(
                "a streaming task did not stop within %.0f s of being cancelled",
                TASK_CANCELLATION_TIMEOUT,
            )
        except Exception as exc:
            _logger.warning("a streaming task failed while stopping: %s", type(exc).__name__)


class SessionManager(ABC):
    """Where a connector keeps one :class:`SessionState` per call or conversation."""

    @abstractmethod
    def get_or_create_session(self, session_id: str) -> SessionState:
        """The state of ``session_id``, created empty on first use."""

    @abstractmethod
    def has_session(self, session_id: str) -> bool:
        """Whether ``session_id`` has state."""

    @abstractmethod
    def remove_session(self, session_id: str) -> None:
        """Forget ``session_id`` (no error when unknown); its task is not cancelled here."""

    @abstractmethod
    def get_all_session_ids(self) -> list[str]:
        """Every session id that has state."""

    @abstractmethod
    def __len__(self) -> int:
        """How many sessions have state."""


class ThreadSafeSessionManager(SessionManager):
    """A :class:`SessionManager` in a dict behind a re-entrant lock (safe across threads)."""

    def __init__(self) -> None:
        self._sessions: dict[str, SessionState] = {}
        self._lock = threading.RLock()

    def get_or_create_session(self, session_id: str) -> SessionState:
        with self._lock:
            return self._sessions.setdefault(session_id, SessionState())

    def has_session(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._sessions

    def remove_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def get_all_session_ids(self) -> list[str]:
        with self._lock:
            return list(self._sessions)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
