"""Inbound events: idempotency claims with leases, and (with Redis) the events themselves.

A webhook the server answers 200 is *accepted*: its claim keys are taken and, in a durable log
(Redis), the event is stored under a short lease that the accepting instance renews while the
turn runs. If that instance dies, the lease runs out and another instance takes the event over
(:meth:`InboundLog.take_over`). Before a reply goes out, :meth:`InboundLog.before_send` records
it; an event taken over after that point is never answered again (the send may have
happened). :meth:`InboundLog.finish` marks the claims done (24 h) and forgets the event.

The in-process log (:class:`InMemoryInboundLog`) holds claims only: in one process there is
nobody to take over from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tac.models.session import ConversationSession
from tac.state.base import DONE_TTL_SECONDS, ClaimResult

if TYPE_CHECKING:
    from tac.state.memory import InMemorySessionStore

__all__ = ["InMemoryInboundLog", "InboundEvent", "InboundLog"]


@dataclass(slots=True)
class InboundEvent:
    """One accepted webhook: its claim keys and what is needed to run it anywhere."""

    keys: tuple[str, ...]
    """Every idempotency key of the event; ``keys[0]`` names it in the log."""
    body: str
    """The webhook body as received (JSON text)."""
    token: str | None = None
    """``I-Twilio-Idempotency-Token``, if the request had one."""
    conversation_id: str | None = None
    sending: bool = False
    """Set on an event taken over after its reply's send was recorded: never send again."""
    owner_lost: bool = field(default=False, compare=False)

    @property
    def id(self) -> str:
        return self.keys[0]


@runtime_checkable
class InboundLog(Protocol):
    """Claims (and, when :attr:`durable`, the events) of accepted webhooks."""

    durable: bool
    """Whether an accepted event survives its instance (and :meth:`take_over` finds it)."""

    async def accept(
        self, event: InboundEvent, lease_seconds: float
    ) -> tuple[ClaimResult, ConversationSession | None]:
        """Claim every key of ``event`` atomically (all or none) and store the event.

        Returns the claim's outcome and, when claimed, the session of
        ``event.conversation_id`` (``None`` when there is none), read in the same step.
        """
        ...

    async def before_send(
        self, event: InboundEvent, session: ConversationSession | None, ttl_seconds: float
    ) -> bool:
        """Save ``session`` (if still stored) and record that the reply is being sent.

        ``False`` when the event is no longer this instance's (taken over): do not send.
        """
        ...

    async def finish(
        self,
        events: Sequence[tuple[InboundEvent, ConversationSession | None]],
        ttl_seconds: float,
        done_ttl_seconds: float = DONE_TTL_SECONDS,
    ) -> None:
        """Mark the events done and save their sessions (those given, if still stored)."""
        ...

    async def release(self, event: InboundEvent) -> None:
        """Give the claim back without finishing (a redelivery or another instance runs it)."""
        ...

    async def renew(self, events: Sequence[InboundEvent], lease_seconds: float) -> list[str]:
        """Extend the leases of events this instance runs; return the ids it no longer holds."""
        ...

    async def take_over(self, lease_seconds: float, limit: int = 50) -> list[InboundEvent]:
        """Take over up to ``limit`` events whose lease ran out (their instance died)."""
        ...


class InMemoryInboundLog:
    """Claims in the in-process store: held until the turn ends, nothing to take over."""

    durable = False

    def __init__(self, store: InMemorySessionStore) -> None:
        self._store = store

    async def accept(
        self, event: InboundEvent, lease_seconds: float
    ) -> tuple[ClaimResult, ConversationSession | None]:
        store = self._store
        for key in event.keys:
            held = store._claim_state(key)
            if held is not None:
                return held, None
        for key in event.keys:
            store._claims[key] = (False, float("inf"))  # held until finish or release
        session = None
        if event.conversation_id is not None:
            session = await store.get_session(event.conversation_id)
        return ClaimResult.CLAIMED, session

    async def before_send(
        self, event: InboundEvent, session: ConversationSession | None, ttl_seconds: float
    ) -> bool:
        if session is not None:
            await self._store.save_session(session, ttl_seconds)
        return True

    async def finish(
        self,
        events: Sequence[tuple[InboundEvent, ConversationSession | None]],
        ttl_seconds: float,
        done_ttl_seconds: float = DONE_TTL_SECONDS,
    ) -> None:
        for event, session in events:
            if session is not None:
                await self._store.save_session(session, ttl_seconds)
            for key in event.keys:
                await self._store.complete(key, done_ttl_seconds)

    async def release(self, event: InboundEvent) -> None:
        for key in event.keys:
            await self._store.release(key)

    async def renew(self, events: Sequence[InboundEvent], lease_seconds: float) -> list[str]:
        return []

    async def take_over(self, lease_seconds: float, limit: int = 50) -> list[InboundEvent]:
        return []
