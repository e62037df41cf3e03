"""Accepted webhooks: claim keys, the delivery a turn finishes, and the lease keeper.

The server accepts an event (:meth:`Inbound.accept`) before answering 200; a channel's turn
finishes it through its :class:`InboundDelivery`. :class:`Inbound` also runs the background
work a durable log needs: renewing the leases of this instance's events, marking finished
events done in batches, and taking over the events of instances that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tac.core.logging import get_logger
from tac.models.session import ConversationSession
from tac.observability import _hooks as _obs
from tac.state import ClaimResult, store_unavailable
from tac.state.inbound import InboundEvent, InboundLog

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["Inbound", "InboundDelivery", "claim_keys", "reply_went_out"]

logger = get_logger("inbound")

_FLUSH_DELAY_SECONDS = 0.05
_SEND_RECORD_PATIENCE_SECONDS = 60.0


def claim_keys(token: str | None, event_type: str, body: bytes, data: Any) -> tuple[str, ...]:
    """CONTRACT: the event's own id from the signed body, and the idempotency token.

    ``eventType:id`` (the communication id of a ``COMMUNICATION_*``; conversation id, status
    and update time of a ``CONVERSATION_*``) comes first: a replayed body with a fresh token
    hits it. Then ``token:eventType``, or a hash of the body when the header is missing.
    """
    keys: list[str] = []
    own = _own_id(event_type, data)
    if own:
        keys.append(f"event:{event_type}:{own}")
    if token:
        keys.append(f"{token}:{event_type}")
    else:
        keys.append(f"sha256:{hashlib.sha256(body).hexdigest()}:{event_type}")
    return tuple(keys)


def _own_id(event_type: str, data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    ident = data.get("id")
    if not isinstance(ident, str) or not ident:
        return None
    if event_type.startswith("CONVERSATION_"):
        updated = data.get("updatedAt") or data.get("dateUpdated")
        status = data.get("status")
        if not isinstance(updated, str) or not isinstance(status, str):
            return None  # an update without its own time cannot be told from the next one
        return f"{ident}:{status}:{updated}"
    return ident


async def reply_went_out(
    tac: TAC, conversation_id: str | None, communication_id: str
) -> bool | None:
    """Whether someone other than the message's author wrote in the conversation after it.

    Asked when an event is taken over after its reply's send was recorded: the lease ran out
    seconds after the owner stopped, so a request it sent has long become a communication.
    ``None`` when it cannot be told (no Orchestrator, the lookup failed, the message is not
    in the conversation): the caller must then assume the reply may have gone out.
    """
    client = tac.conversation_orchestrator_client
    if client is None or not conversation_id or not communication_id:
        return None
    try:
        communications = await client.list_communications(conversation_id)
    except Exception as exc:
        logger.warning("could not check whether a reply went out: %s", exc)
        return None
    ours = next((c for c in communications if c.id == communication_id), None)
    if ours is None:
        return None
    after = False
    for other in communications:
        if other is ours:
            after = True
        elif other.author.address != ours.author.address and (
            after  # later in Twilio's order (oldest first)
            or (
                ours.created_at is not None
                and other.created_at is not None
                and other.created_at > ours.created_at
            )
        ):
            return True
    return False
    return None


class InboundDelivery:
    """One accepted event, as a turn sees it (:class:`tac.core.turns.Delivery`)."""

    __slots__ = ("event", "finished", "inbound", "session", "session_loaded")

    def __init__(
        self,
        inbound: Inbound,
        event: InboundEvent,
        session: ConversationSession | None,
        *,
        session_loaded: bool = True,
    ) -> None:
        self.inbound = inbound
        self.event = event
        self.session = session
        """The session read when the event was claimed (``None``: none stored then)."""
        self.session_loaded = session_loaded
        self.finished = False

    async def before_send(self, session: ConversationSession) -> bool:
        if self.event.sending:
            return False
        log = self.inbound.log
        ttl = self.inbound.tac.config.session_ttl_seconds
        delay = 0.1
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _SEND_RECORD_PATIENCE_SECONDS
        while True:
            try:
                ok = await log.before_send(self.event, session, ttl)
                break
            except Exception as exc:
                if not store_unavailable(exc):
                    raise
                # The script may have run before the connection broke. Only this instance
                # knows it has not sent yet: try again (the lease stays renewed meanwhile).
                if loop.time() + delay > give_up:
                    await self.abandon(exc)
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        if not ok:
            logger.warning(
                "reply not sent: another instance took the event over",
                conversation_id=session.conversation_id,
            )
        return ok

    async def finish(self, session: ConversationSession | None, *, saved: bool) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            await self.inbound.finish(self.event, None if saved else session)
        except Exception as exc:
            if not store_unavailable(exc):
                raise
            await self.abandon(exc)

    async def abandon(self, exc: BaseException) -> None:
        """Stop renewing the event's lease: once it lapses, an instance (maybe this one)
        takes the event over and runs it again (unless its send was recorded)."""
        self.finished = True
        self.inbound.forget(self.event)
        logger.warning("session store unreachable mid-turn; the event will be retried: %s", exc)


class Inbound:
    """The accepted events of one server: accept, finish, and the background lease keeper."""

    def __init__(
        self,
        tac: TAC,
        log: InboundLog,
        *,
        lease_seconds: float,
        run: Callable[[InboundEvent, InboundDelivery], Awaitable[None]] | None = None,
    ) -> None:
        self.tac = tac
        self.log = log
        self.lease_seconds = lease_seconds
        self._run = run
        self._running: dict[str, InboundEvent] = {}
        self._done: list[tuple[InboundEvent, ConversationSession | None]] = []
        self._flush_task: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.taking_over = True
        self._takeovers_from = 0.0  # loop time before which no event is taken over

    async def accept(self, event: InboundEvent) -> tuple[ClaimResult, InboundDelivery | None]:
        """Claim ``event`` (and persist it, when durable); the delivery its turn finishes."""
        result, session = await self.log.accept(event, self.lease_seconds)
        if result is not ClaimResult.CLAIMED:
            return result, None
        self._running[event.id] = event
        return result, InboundDelivery(self, event, session)

    async def finish(self, event: InboundEvent, session: ConversationSession | None) -> None:
        """Mark ``event`` done (batched when durable and there is no session to save)."""
        if session is None and self.log.durable:
            self._done.append((event, None))
            if self._flush_task is None:
                self._flush_task = asyncio.get_running_loop().create_task(self._flush_soon())
            return
        self._running.pop(event.id, None)
        await self.log.finish([(event, session)], self.tac.config.session_ttl_seconds)

    def forget(self, event: InboundEvent) -> None:
        """Stop renewing ``event`` (its lease lapses; a takeover runs it again)."""
        self._running.pop(event.id, None)

    async def release(self, event: InboundEvent) -> None:
        """Leave an event unfinished for a redelivery or another instance."""
        self._running.pop(event.id, None)
        await self.log.release(event)

    async def _flush_soon(self) -> None:
        try:
            await asyncio.sleep(_FLUSH_DELAY_SECONDS)
        finally:
            self._flush_task = None
        await self.flush()

    async def flush(self) -> None:
        """Write the pending done marks (one round trip for all of them)."""
        batch, self._done = self._done, []
        if not batch:
            return
        try:
            await self.log.finish(batch, self.tac.config.session_ttl_seconds)
        except Exception as exc:
            self._done[:0] = batch  # kept: the next flush retries, leases stay renewed
            logger.warning("could not mark %d events done: %s", len(batch), exc)
            return
        for event, _ in batch:
            self._running.pop(event.id, None)

    # -- the keeper ----------------------------------------------------------------------

    def start(self) -> None:
        """Renew leases, flush done marks and take over dead instances' events (durable)."""
        if self.log.durable and (self._keeper is None or self._keeper.done()):
            self._keeper = asyncio.get_running_loop().create_task(
                self._keep(), name="tac-inbound-keeper"
            )

    async def _keep(self) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick()
            except Exception as exc:  # Redis away for a moment: try again next round
                logger.warning("inbound lease upkeep failed: %s", exc)
                # After an outage every instance's leases may have run out: give the owners
                # a lease's time to renew theirs before taking anything over.
                loop = asyncio.get_running_loop()
                self._takeovers_from = loop.time() + interval + self.lease_seconds

    async def tick(self) -> int:
        """One round of upkeep; returns how many events were taken over."""
        await self.flush()
        running = list(self._running.values())
        lost = await self.log.renew(running, self.lease_seconds)
        for event_id in lost:
            logger.warning("lost the lease of an event (this instance was too slow)")
            _obs.observer.lease_expired()
            self._running.pop(event_id, None)
        if not self.taking_over or self._run is None:
            return 0
        if asyncio.get_running_loop().time() < self._takeovers_from:
            return 0
        taken = await self.log.take_over(self.lease_seconds)
        for event in taken:
            logger.info(
                "took over an event of an instance that stopped",
                conversation_id=event.conversation_id,
            )
            _obs.observer.inbound_takeover()
            self._running[event.id] = event
            delivery = InboundDelivery(self, event, None, session_loaded=False)
            await self._run(event, delivery)
        return len(taken)

    async def aclose(self) -> None:
        """Stop the keeper and write pending done marks."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        if self._flush_task is not None:
            self._flush_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush_task
        with contextlib.suppress(Exception):
            await self.flush()

    def running(self) -> int:
        return len(self._running)
