"""The turn engine: every turn, on every channel, goes through :func:`run_turn`.

One turn is five named steps, in this order (each a function, so metrics and traces have one
place to hook):

1. :func:`load_memory`: memory per ``memory_mode`` (``never`` → ``None``);
2. :func:`call_agent`: ``on_message_ready(message, session, memory)``, cancellable;
3. :func:`deliver_reply`: the reply through the channel's :class:`ReplySink` (the Actions API
   for messaging, ``text`` frames for voice). For an inbound event, the send is recorded
   before it happens (:meth:`Delivery.before_send`), so an instance that takes the event over
   never repeats a send that may have happened;
4. :func:`finish_turn`: save the session (only if it is still stored) and mark the event done.

Loading the session is the channel's step 0: it knows how a conversation starts (messaging
reconciles participants, voice waits for ``setup``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from tac.context.errors import TACError, outcome_uncertain
from tac.models.memory import MemoryMode
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse
from tac.observability import _hooks as _obs

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = [
    "Delivery",
    "ReplySink",
    "call_agent",
    "deliver_reply",
    "finish_turn",
    "load_memory",
    "run_turn",
]

Reply = str | AsyncIterator[str]


class ReplySink(Protocol):
    """Where a channel's replies go.

    ``streams``: ``True`` → :meth:`deliver` gets an async iterator as the agent returned it
    (voice speaks tokens as they come); ``False`` → the engine joins it into one str first
    (messaging sends one message). :meth:`fail` tidies up after an error mid-reply.
    """

    streams: bool

    async def deliver(self, reply: Reply) -> None: ...

    async def fail(self) -> None: ...

    def quiet(self, exc: BaseException) -> bool:
        """Whether ``exc`` only means the other side went away (not reported)."""
        ...


class Delivery(Protocol):
    """The inbound event a turn answers (its idempotency claim)."""

    async def before_send(self, session: ConversationSession) -> bool:
        """Save ``session`` and record that the reply is about to be sent.

        ``False``: the event is no longer this instance's (another took it over): do not send.
        """
        ...

    async def finish(self, session: ConversationSession | None, *, saved: bool) -> None:
        """Mark the event done; save ``session`` too unless ``saved``."""
        ...


async def load_memory(
    tac: TAC,
    session: ConversationSession,
    mode: MemoryMode,
    message: str,
    *,
    degraded: bool = False,
) -> TACMemoryResponse | None:
    """Step 1: the memory argument of the callback (``degraded``: no conversation → empty)."""
    if mode == "never":
        return None
    if degraded:
        return TACMemoryResponse.empty()
    return await tac.memory_for_turn(session, mode, message)


async def call_agent(
    tac: TAC,
    session: ConversationSession,
    message: str,
    memory: TACMemoryResponse | None,
    *,
    streams: bool,
) -> Reply | None:
    """Step 2: the agent's reply (joined into one str unless the sink ``streams``)."""
    reply = await tac.trigger_message_ready(message, session, memory)
    if reply is None or isinstance(reply, str) or streams:
        return reply
    return "".join([chunk async for chunk in reply])


async def deliver_reply(
    session: ConversationSession, reply: Reply, sink: ReplySink, delivery: Delivery | None
) -> bool:
    """Step 3: record the send (inbound events), then send. ``True`` once the session is saved."""
    observer = _obs.observer
    if delivery is not None:
        if not await delivery.before_send(session):
            return True  # taken over elsewhere: that instance saw the send recorded, or sends
        with observer.stage("tac.reply"):
            await sink.deliver(reply)
        observer.reply_sent()
        return True
    with observer.stage("tac.reply"):
        await sink.deliver(reply)
    observer.reply_sent()
    return False


async def finish_turn(
    tac: TAC, session: ConversationSession, delivery: Delivery | None, *, saved: bool
) -> None:
    """Step 4: save the session (never bringing back an ended one) and mark the event done."""
    if delivery is not None:
        await delivery.finish(session, saved=saved)
    elif not saved:
        await tac.save_session(session)


async def run_turn(
    tac: TAC,
    session: ConversationSession,
    message: str,
    *,
    mode: MemoryMode,
    sink: ReplySink,
    delivery: Delivery | None = None,
    context: dict[str, Any],
    degraded: bool = False,
) -> None:
    """Run one turn (see the module docstring). Errors go to ``on_error``, never raised.

    ``context`` names the turn in ``on_error`` (``conversation_id``, ``channel``…). A
    cancelled turn (voice: the caller talked over the agent) still saves its session.
    """
    saved = False
    try:
        try:
            memory = await load_memory(tac, session, mode, message, degraded=degraded)
            reply = await call_agent(tac, session, message, memory, streams=sink.streams)
        except Exception as exc:
            await _report(tac, sink, exc, {**context, "callback": "on_message_ready"})
            return
        if reply is None:
            return
        if isinstance(reply, str) and not reply.strip() and not sink.streams:
            tac.logger.debug("empty reply not sent", conversation_id=session.conversation_id)
            return
        try:
            saved = await deliver_reply(session, reply, sink, delivery)
        except Exception as exc:
            saved = delivery is not None
            await _report(
                tac,
                sink,
                exc,
                {**context, "reply_uncertain": outcome_uncertain(exc)}
                if not sink.streams
                else {**context, "callback": "on_message_ready"},
            )
    finally:
        await finish_turn(tac, session, delivery, saved=saved)


async def _report(tac: TAC, sink: ReplySink, exc: Exception, context: dict[str, Any]) -> None:
    if sink.quiet(exc):
        return
    await sink.fail()
    if isinstance(exc, TACError) and "reply_uncertain" not in context:
        context["reply_uncertain"] = outcome_uncertain(exc)
    await tac.trigger_error(exc, context)
