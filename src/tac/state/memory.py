"""The in-process :class:`~tac.state.SessionStore` backend (the default)."""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Any, TypeVar

from tac.models.session import ConversationSession
from tac.state.base import DEFAULT_LEASE_SECONDS, DONE_TTL_SECONDS, ClaimResult
from tac.state.inbound import InboundLog, InMemoryInboundLog
from tac.state.live_calls import InMemoryLiveCalls, LiveCalls

__all__ = ["InMemorySessionStore"]

_V = TypeVar("_V")


class InMemorySessionStore:
    """Dictionaries with deadlines, for one process.

    Every entry carries a deadline on the monotonic clock; sessions are swept by
    :meth:`pop_expired_sessions` (the core's sweeper fires ``on_conversation_ended`` for them),
    other entries by :meth:`purge_expired` and lazily on read. Safe within one event loop: no
    method awaits between reading and writing. Sessions are kept as JSON and handed out as
    copies, as a shared backend does: change one, then save it.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, tuple[str, float]] = {}  # id -> (session JSON, deadline)
        self._deadlines: list[tuple[float, str]] = []  # heap; may hold stale entries
        self._calls: dict[str, tuple[str, float]] = {}
        self._memory: dict[str, tuple[dict[str, Any], float]] = {}
        self._claims: dict[str, tuple[bool, float]] = {}  # key -> (done, deadline)
        self._handoffs: dict[str, tuple[str, float]] = {}
        self._closed: dict[str, tuple[bool, float]] = {}
        self.inbound: InboundLog = InMemoryInboundLog(self)
        self.live_calls: LiveCalls = InMemoryLiveCalls()

    # -- sessions ----------------------------------------------------------------------

    async def get_session(self, conversation_id: str) -> ConversationSession | None:
        entry = self._sessions.get(conversation_id)
        return None if entry is None else ConversationSession.model_validate_json(entry[0])

    async def create_session(
        self, session: ConversationSession, ttl_seconds: float
    ) -> tuple[ConversationSession, bool]:
        existing = self._sessions.get(session.conversation_id)
        if existing is not None:
            return ConversationSession.model_validate_json(existing[0]), False
        self._put(session, ttl_seconds)
        return session, True

    async def save_session(self, session: ConversationSession, ttl_seconds: float) -> bool:
        if session.conversation_id not in self._sessions:
            return False
        self._put(session, ttl_seconds)
        return True

    def _put(self, session: ConversationSession, ttl_seconds: float) -> None:
        deadline = self._clock() + ttl_seconds
        self._sessions[session.conversation_id] = (session.model_dump_json(), deadline)
        heapq.heappush(self._deadlines, (deadline, session.conversation_id))
        if len(self._deadlines) > 4 * len(self._sessions) + 64:
            self._compact()

    def _compact(self) -> None:
        self._deadlines = [(d, cid) for cid, (_, d) in self._sessions.items()]
        heapq.heapify(self._deadlines)

    async def end_session(self, conversation_id: str) -> ConversationSession | None:
        entry = self._sessions.pop(conversation_id, None)
        self._memory.pop(conversation_id, None)
        self._handoffs.pop(conversation_id, None)
        if entry is None:
            return None
        session = ConversationSession.model_validate_json(entry[0])
        call_sid = session.call_sid
        if call_sid and self._calls.get(call_sid, ("", 0.0))[0] == conversation_id:
            del self._calls[call_sid]  # only a link that still points at this conversation
        return session

    async def close_conversation(
        self, conversation_id: str, ttl_seconds: float
    ) -> ConversationSession | None:
        session = await self.end_session(conversation_id)
        if session is None:
            self._closed[conversation_id] = (True, self._clock() + ttl_seconds)
        return session

    async def was_closed(self, conversation_id: str) -> bool:
        return self._live(self._closed, conversation_id) is not None

    async def pop_expired_sessions(self, limit: int = 100) -> list[ConversationSession]:
        now = self._clock()
        expired: list[ConversationSession] = []
        while self._deadlines and len(expired) < limit and self._deadlines[0][0] <= now:
            deadline, conversation_id = heapq.heappop(self._deadlines)
            entry = self._sessions.get(conversation_id)
            if entry is None or entry[1] != deadline:
                continue  # ended already, or refreshed since: a stale heap entry
            session = await self.end_session(conversation_id)
            if session is not None:
                expired.append(session)
        return expired

    async def session_count(self) -> int:
        return len(self._sessions)

    # -- calls -------------------------------------------------------------------------

    async def link_call(self, call_sid: str, conversation_id: str, ttl_seconds: float) -> None:
        self._calls[call_sid] = (conversation_id, self._clock() + ttl_seconds)

    async def conversation_for_call(self, call_sid: str) -> str | None:
        return self._live(self._calls, call_sid)

    async def unlink_call(self, call_sid: str) -> None:
        self._calls.pop(call_sid, None)

    # -- memory cache ------------------------------------------------------------------

    async def get_cached_memory(self, conversation_id: str) -> dict[str, Any] | None:
        return self._live(self._memory, conversation_id)

    async def set_cached_memory(
        self, conversation_id: str, memory: dict[str, Any], ttl_seconds: float
    ) -> None:
        self._memory[conversation_id] = (memory, self._clock() + ttl_seconds)

    async def clear_cached_memory(self, conversation_id: str) -> None:
        self._memory.pop(conversation_id, None)

    # -- idempotency -------------------------------------------------------------------

    async def claim(self, key: str, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> ClaimResult:
        held = self._claim_state(key)
        if held is not None:
            return held
        self._claims[key] = (False, self._clock() + lease_seconds)
        return ClaimResult.CLAIMED

    def _claim_state(self, key: str) -> ClaimResult | None:
        entry = self._claims.get(key)
        if entry is not None and entry[1] > self._clock():
            return ClaimResult.DONE if entry[0] else ClaimResult.LEASED
        return None

    async def complete(self, key: str, ttl_seconds: float = DONE_TTL_SECONDS) -> None:
        self._claims[key] = (True, self._clock() + ttl_seconds)

    async def release(self, key: str) -> None:
        entry = self._claims.get(key)
        if entry is not None and not entry[0]:
            del self._claims[key]

    # -- handoffs ----------------------------------------------------------------------

    async def set_pending_handoff(
        self, conversation_id: str, handoff_data: str, ttl_seconds: float
    ) -> None:
        self._handoffs[conversation_id] = (handoff_data, self._clock() + ttl_seconds)

    async def pop_pending_handoff(self, conversation_id: str) -> str | None:
        value = self._live(self._handoffs, conversation_id)
        self._handoffs.pop(conversation_id, None)
        return value

    # -- housekeeping ------------------------------------------------------------------

    async def purge_expired(self) -> int:
        now = self._clock()
        removed = 0
        tables: tuple[dict[str, tuple[Any, float]], ...] = (
            self._calls,
            self._memory,
            self._claims,
            self._handoffs,
            self._closed,
        )
        for table in tables:
            stale = [key for key, entry in table.items() if entry[1] <= now]
            for key in stale:
                del table[key]
            removed += len(stale)
        return removed

    async def aclose(self) -> None:
        return None

    def _live(self, table: dict[str, tuple[_V, float]], key: str) -> _V | None:
        entry = table.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del table[key]
            return None
        return entry[0]
