"""Agent Framework sessions in this process's memory."""

from __future__ import annotations

from typing import Any

__all__ = ["InMemoryAgentSessionStore"]


class InMemoryAgentSessionStore:
    """Sessions in a dict (one process); the connector deletes each when its session ends."""

    def __init__(self) -> None:
        self._sessions: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    async def load(self, session_id: str) -> Any | None:
        return self._sessions.get(session_id)

    async def save(self, session_id: str, session: Any) -> None:
        self._sessions[session_id] = session

    async def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
