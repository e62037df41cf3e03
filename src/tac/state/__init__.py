"""Durable per-conversation state behind the :class:`SessionStore` protocol.

``TAC_STATE_URL`` unset → :class:`InMemorySessionStore` (one process); ``redis://…`` → Redis.
"""

from tac.state.base import ClaimResult, SessionStore
from tac.state.memory import InMemorySessionStore

__all__ = ["ClaimResult", "InMemorySessionStore", "SessionStore", "create_session_store"]


def create_session_store(state_url: str | None) -> SessionStore:
    """The store ``TAC_STATE_URL`` names (``None`` → in-process)."""
    if not state_url:
        return InMemorySessionStore()
    from tac.core.errors import TACConfigError

    raise TACConfigError("TAC_STATE_URL", f"must be empty or a redis:// URL, got {state_url!r}")
