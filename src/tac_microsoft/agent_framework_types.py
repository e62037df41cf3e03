"""Where :class:`~tac_microsoft.AgentFrameworkConnector` keeps Agent Framework sessions."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["AgentSessionStore"]


@runtime_checkable
class AgentSessionStore(Protocol):
    """Agent Framework ``AgentSession``\\ s by session id (TAC's conversation id).

    A store may also have ``async delete(session_id)``; the connector calls it when the
    conversation's session ends.
    """

    async def load(self, session_id: str) -> Any | None: ...

    async def save(self, session_id: str, session: Any) -> None: ...
