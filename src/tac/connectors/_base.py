"""Several connectors on one TAC, and the base every framework connector shares."""

from __future__ import annotations

import weakref
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tac.connectors.history import ConversationHistory
from tac.connectors.streaming import RunEvent, collect, speak
from tac.core._callbacks import invoke
from tac.core.logging import get_logger
from tac.models.session import Channel, ConversationSession
from tac.models.tac import TACMemoryResponse

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["ChannelHandler", "Connector", "ConnectorRouter"]

logger = get_logger("connectors")


@runtime_checkable
class ChannelHandler(Protocol):
    """What :class:`ConnectorRouter` routes a channel's events to (every connector is one)."""

    async def handle_message(
        self, message: str, session: ConversationSession, memory: TACMemoryResponse | None
    ) -> str | AsyncIterator[str] | None: ...

    async def handle_interrupt(self, session: ConversationSession, interrupt: Any) -> None: ...

    async def handle_session_end(self, session: ConversationSession) -> None: ...


class _CallbackHandler:
    """A plain ``on_message_ready``-style callback as a handler."""

    def __init__(self, callback: Callable[..., Any]) -> None:
        self.callback = callback

    async def handle_message(
        self, message: str, session: ConversationSession, memory: TACMemoryResponse | None
    ) -> str | AsyncIterator[str] | None:
        result: str | AsyncIterator[str] | None = await invoke(
            self.callback, message, session, memory
        )
        return result

    async def handle_interrupt(self, session: ConversationSession, interrupt: Any) -> None:
        return None

    async def handle_session_end(self, session: ConversationSession) -> None:
        return None


_ROUTERS: weakref.WeakKeyDictionary[TAC, ConnectorRouter] = weakref.WeakKeyDictionary()


class ConnectorRouter:
    """Routes a TAC's messages, interrupts and session ends to the handler that owns the
    session's channel, so that several connectors (and plain callbacks) share one TAC.

    ``ConnectorRouter.of(tac)`` is the TAC's router; it takes over ``on_message_ready`` and
    ``on_interrupt`` the first time it is used, keeping callbacks registered before as the
    handler of channels no connector claims.
    """

    def __init__(self, tac: TAC) -> None:
        self.tac = tac
        self._owners: dict[Channel, ChannelHandler] = {}
        self._default: ChannelHandler | None = None
        self._previous_interrupt: Callable[..., Any] | None = None
        callbacks: dict[str, Callable[..., Any]] = getattr(tac, "_callbacks", {})
        previous = callbacks.get("message_ready")
        if previous is not None:
            self._default = _CallbackHandler(previous)
        self._previous_interrupt = callbacks.get("interrupt")
        tac.on_message_ready(self._on_message)
        tac.on_interrupt(self._on_interrupt)
        tac.add_session_end_listener(self._on_session_end)

    @classmethod
    def of(cls, tac: TAC) -> ConnectorRouter:
        """The router of ``tac`` (created and installed on first use)."""
        router = _ROUTERS.get(tac)
        if router is None:
            router = _ROUTERS[tac] = cls(tac)
        return router

    def add(self, handler: ChannelHandler, channels: Iterable[Channel | str] | None = None) -> None:
        """Give ``handler`` these channels (``None``: every channel no one else claims).

        Raises:
            ValueError: a channel is already owned by another handler, or a second handler
                asks for every channel.
        """
        if channels is None:
            if self._default is not None and not isinstance(self._default, _CallbackHandler):
                raise ValueError(
                    f"{type(self._default).__name__} already handles every unclaimed channel; "
                    "pass channels=[...] to share the TAC"
                )
            self._default = handler
            return
        wanted = [Channel(c.lower() if isinstance(c, str) else c) for c in channels]
        if not wanted:
            raise ValueError("channels must name at least one channel")
        for channel in wanted:
            owner = self._owners.get(channel)
            if owner is not None and owner is not handler:
                raise ValueError(
                    f"channel {channel.value!r} is already handled by {type(owner).__name__}"
                )
        for channel in wanted:
            self._owners[channel] = handler

    def add_callback(
        self, callback: Callable[..., Any], channels: Iterable[Channel | str] | None = None
    ) -> None:
        """Route these channels to a plain ``callback(message, session, memory)``."""
        self.add(_CallbackHandler(callback), channels)

    def owner(self, channel: Channel | str) -> ChannelHandler | None:
        """The handler of ``channel`` (``None`` when no one handles it)."""
        return self._owners.get(Channel(channel), self._default)

    async def _on_message(
        self, message: str, session: ConversationSession, memory: TACMemoryResponse | None
    ) -> str | AsyncIterator[str] | None:
        handler = self.owner(session.channel)
        if handler is None:
            logger.warning(
                "no connector handles this channel; message dropped",
                channel=str(session.channel),
                conversation_id=session.conversation_id,
            )
            return None
        return await handler.handle_message(message, session, memory)

    async def _on_interrupt(self, session: ConversationSession, interrupt: Any) -> None:
        handler = self.owner(session.channel)
        if handler is not None:
            await handler.handle_interrupt(session, interrupt)
        if self._previous_interrupt is not None:
            await invoke(self._previous_interrupt, session, interrupt)

    async def _on_session_end(self, session: ConversationSession) -> None:
        handler = self.owner(session.channel)
        if handler is not None:
            await handler.handle_session_end(session)


@dataclass
class Turn:
    """One agent turn in progress (per process; gone when the turn ends)."""

    session: ConversationSession
    message: str
    memory: TACMemoryResponse | None
    text: str = ""
    """What the run has said so far."""
    heard: str | None = None
    """Set when the caller interrupted while the turn was still running."""
    ended: bool = False
    """Set when the session ended while the turn was still running (e.g. a handoff tool)."""


class Connector(ABC):
    """Base of opentac's framework connectors.

    A connector owns a set of channels on its TAC (``channels=None``: every channel no other
    connector claims), runs its framework for each message, streams the reply to voice and
    sends it whole on messaging, keeps history that ends with the session, and trims the last
    reply to what the caller heard on an interrupt. Subclasses implement :meth:`run`.

    Args:
        tac: the app's TAC.
        channels: the channels this connector answers (``"voice"``, ``"sms"``, …).
        history: where conversations' messages live, for connectors whose framework keeps
            none (``None``: the framework keeps its own, e.g. a LangGraph checkpointer).
        filler: a short line to say on voice when a tool keeps the caller waiting longer than
            ``filler_after_seconds`` (``None``: say nothing).
    """

    def __init__(
        self,
        tac: TAC,
        *,
        channels: Iterable[Channel | str] | None = None,
        history: ConversationHistory | None = None,
        filler: str | None = None,
        filler_after_seconds: float = 1.0,
    ) -> None:
        self.tac = tac
        self.history: ConversationHistory | None = history
        self.filler = filler
        self.filler_after_seconds = filler_after_seconds
        self._turns: dict[str, Turn] = {}
        ConnectorRouter.of(tac).add(self, channels)

    @abstractmethod
    def run(self, turn: Turn) -> AsyncIterator[RunEvent]:
        """Run the framework for one message: yield text chunks and tool markers."""

    async def finish_turn(self, turn: Turn, completed: bool) -> None:  # noqa: B027 - optional hook
        """Persist what the turn produced (called once, even when the turn was cancelled)."""

    async def trim_reply(self, session: ConversationSession, heard: str) -> None:
        """Cut the conversation's last reply to ``heard`` (default: in :attr:`history`)."""
        if self.history is not None:
            await self.history.trim_last_reply(session.conversation_id, heard)

    async def forget(self, session: ConversationSession) -> None:
        """Drop everything kept for the conversation (its session ended)."""
        if self.history is not None:
            await self.history.clear(session.conversation_id)

    # -- ChannelHandler --------------------------------------------------------------------

    async def handle_message(
        self, message: str, session: ConversationSession, memory: TACMemoryResponse | None
    ) -> str | AsyncIterator[str] | None:
        turn = Turn(session, message, memory)
        events = self._tracked(turn)
        if Channel(session.channel) == Channel.VOICE:
            return speak(events, filler=self.filler, filler_after_seconds=self.filler_after_seconds)
        text = await collect(events)
        return text or None

    async def _tracked(self, turn: Turn) -> AsyncIterator[RunEvent]:
        cid = turn.session.conversation_id
        self._turns[cid] = turn
        completed = False
        try:
            async for event in self.run(turn):
                if isinstance(event, str):
                    turn.text += event
                yield event
            completed = True
        finally:
            if self._turns.get(cid) is turn:
                del self._turns[cid]
            try:
                await self.finish_turn(turn, completed)
                if turn.ended:
                    await self.forget(turn.session)  # what the turn saved outlives nothing
                elif turn.heard is not None:
                    await self.trim_reply(turn.session, turn.heard)
            except Exception as exc:  # never hide the turn's own outcome
                await self.tac.trigger_error(
                    exc,
                    {
                        "conversation_id": cid,
                        "channel": str(turn.session.channel),
                        "connector": type(self).__name__,
                    },
                )

    async def handle_interrupt(self, session: ConversationSession, interrupt: Any) -> None:
        heard = getattr(interrupt, "utterance_until_interrupt", None)
        if heard is None and isinstance(interrupt, dict):
            heard = interrupt.get("utteranceUntilInterrupt")
        heard = heard if isinstance(heard, str) else ""
        turn = self._turns.get(session.conversation_id)
        if turn is not None:
            turn.heard = heard  # applied once the turn has saved what it produced
            return
        await self.trim_reply(session, heard)

    async def aclose(self) -> None:
        """Release the history's connections (call at shutdown)."""
        if self.history is not None:
            await self.history.aclose()

    async def handle_session_end(self, session: ConversationSession) -> None:
        turn = self._turns.get(session.conversation_id)
        if turn is not None:
            turn.ended = True  # forgotten when the turn finishes (a handoff tool ends it mid-turn)
            return
        await self.forget(session)


class ChannelsConnector(Connector):
    """A connector that builds its channels (:class:`ConnectorChannels`) and owns them all,
    as the partner packages' connectors do.

    Attributes: ``channels``, ``voice``, ``sms``, ``chat``, ``rcs``, ``whatsapp``.
    """

    def __init__(
        self,
        tac: TAC,
        *,
        sms_config: Any = None,
        voice_config: Any = None,
        rcs_config: Any = None,
        whatsapp_config: Any = None,
        chat_config: Any = None,
        filler: str | None = None,
        history: ConversationHistory | None = None,
    ) -> None:
        from tac.connectors.channels import ConnectorChannels

        self.channels = ConnectorChannels(
            tac,
            voice_config=voice_config,
            sms_config=sms_config,
            rcs_config=rcs_config,
            whatsapp_config=whatsapp_config,
            chat_config=chat_config,
        )
        self.voice = self.channels.voice
        self.sms = self.channels.sms
        self.chat = self.channels.chat
        self.rcs = self.channels.rcs
        self.whatsapp = self.channels.whatsapp
        super().__init__(tac, channels=self.channels.names, filler=filler, history=history)
