"""The :class:`SessionStore` protocol: durable per-conversation state, shared by instances.

What another instance could need lives here: the session, the ``once`` memory cache,
idempotency claims and pending handoffs. Everything has an end of life (a TTL), and the
operations that decide "who does it" are atomic, so several instances behind a load balancer
neither lose nor double anything:

- :meth:`SessionStore.create_session` creates a session only if none exists;
- :meth:`SessionStore.end_session` removes a session and returns it to exactly one caller, so
  ``on_conversation_ended`` fires once;
- :meth:`SessionStore.claim` is an atomic claim-with-lease on a webhook's idempotency key.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tac.models.session import ConversationSession

if TYPE_CHECKING:
    from tac.state.inbound import InboundLog
    from tac.state.live_calls import LiveCalls

__all__ = ["ClaimResult", "SessionStore"]

DEFAULT_LEASE_SECONDS = 5.0
DONE_TTL_SECONDS = 24 * 3600.0


class ClaimResult(str, Enum):
    """The outcome of :meth:`SessionStore.claim`."""

    CLAIMED = "claimed"
    """This caller owns the key now and must :meth:`~SessionStore.complete` it."""
    LEASED = "leased"
    """Someone else holds a live lease on the key (a turn in progress): drop this delivery."""
    DONE = "done"
    """The key was already processed: drop this delivery."""


@runtime_checkable
class SessionStore(Protocol):
    """Durable per-conversation state. All methods are coroutine functions.

    Sessions returned by :meth:`get_session` are copies (in every backend): after changing
    one, call :meth:`save_session`. Only :meth:`create_session` creates: a session that has
    ended stays ended. :attr:`inbound` holds the claims of accepted webhooks.
    """

    inbound: InboundLog
    live_calls: LiveCalls

    async def get_session(self, conversation_id: str) -> ConversationSession | None:
        """The session, or ``None``. Reading does not extend its life."""
        ...

    async def create_session(
        self, session: ConversationSession, ttl_seconds: float
    ) -> tuple[ConversationSession, bool]:
        """Store ``session`` unless one exists; return the stored session and whether it is new."""
        ...

    async def save_session(self, session: ConversationSession, ttl_seconds: float) -> bool:
        """Replace a stored session and push its idle deadline ``ttl_seconds`` ahead.

        ``False`` (and nothing written) when it is no longer stored: it ended, or expired.
        """
        ...

    async def end_session(self, conversation_id: str) -> ConversationSession | None:
        """Remove the session, its cache and pending handoff; return it to exactly one caller."""
        ...

    async def close_conversation(
        self, conversation_id: str, ttl_seconds: float
    ) -> ConversationSession | None:
        """End the session like :meth:`end_session`; with none stored, remember for
        ``ttl_seconds`` that the conversation closed (:meth:`was_closed`), atomically."""
        ...

    async def was_closed(self, conversation_id: str) -> bool:
        """Whether :meth:`close_conversation` found no session to end for this conversation."""
        ...

    async def pop_expired_sessions(self, limit: int = 100) -> list[ConversationSession]:
        """Remove and return up to ``limit`` sessions whose idle deadline has passed."""
        ...

    async def session_count(self) -> int:
        """How many sessions are stored (for tests and metrics)."""
        ...

    async def link_call(self, call_sid: str, conversation_id: str, ttl_seconds: float) -> None:
        """Remember which conversation a voice call belongs to."""
        ...

    async def conversation_for_call(self, call_sid: str) -> str | None:
        """The conversation linked to ``call_sid``, if any."""
        ...

    async def unlink_call(self, call_sid: str) -> None: ...

    async def get_cached_memory(self, conversation_id: str) -> dict[str, Any] | None:
        """The memory cached for ``memory_mode="once"`` (as produced by the core), or ``None``."""
        ...

    async def set_cached_memory(
        self, conversation_id: str, memory: dict[str, Any], ttl_seconds: float
    ) -> None: ...

    async def clear_cached_memory(self, conversation_id: str) -> None: ...

    async def claim(self, key: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> ClaimResult:
        """Atomically claim an idempotency key with a lease (an expired lease can be re-claimed)."""
        ...

    async def complete(self, key: str, ttl_seconds: float = DONE_TTL_SECONDS) -> None:
        """Mark a claimed key done; redeliveries are dropped until it expires."""
        ...

    async def release(self, key: str) -> None:
        """Give a claim back without completing it, so that a redelivery is processed."""
        ...

    async def set_pending_handoff(
        self, conversation_id: str, handoff_data: str, ttl_seconds: float
    ) -> None: ...

    async def pop_pending_handoff(self, conversation_id: str) -> str | None:
        """Take the pending handoff (once)."""
        ...

    async def purge_expired(self) -> int:
        """Drop expired entries other than sessions (claims, caches, links); return how many."""
        ...

    async def aclose(self) -> None: ...
