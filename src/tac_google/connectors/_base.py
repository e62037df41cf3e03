"""What every Google connector shares: channels built as the partner package builds them,
memory sent only when it changed since it was last sent in the conversation, and ending a call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from tac.adapters import MemoryPromptBuilder
from tac.connectors import ChannelsConnector, Turn
from tac.core.logging import get_logger
from tac.models.session import Channel, ConversationSession, PendingHandoffData

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["CALL_ENDED", "GoogleConnector", "reply_text"]

logger = get_logger("tac_google")

T = TypeVar("T")

CALL_ENDED = "call_ended"
"""The ``handoffData`` of a call the agent ended (ConversationRelay then hangs up, or calls
the ``<Connect>`` action URL when there is one)."""


class GoogleConnector(ChannelsConnector):
    """A :class:`~tac.connectors.ChannelsConnector` whose agent keeps the conversation's history
    (server-side, or in its session service), so the memory is sent again only when it changed."""

    def __init__(self, tac: TAC, **channel_configs: Any) -> None:
        super().__init__(tac, **channel_configs)
        self._sent_memory: dict[str, str] = {}

    def new_memory(self, turn: Turn) -> str | None:
        """The turn's memory as a prompt, when it differs from what the conversation was last
        sent (mark it sent with :meth:`memory_sent` once the agent has it)."""
        memory = MemoryPromptBuilder.build(turn.memory, turn.session)
        if not memory or self._sent_memory.get(turn.session.conversation_id) == memory:
            return None
        return memory

    def memory_sent(self, turn: Turn, memory: str | None) -> None:
        """Remember that the agent has this memory (``None``: nothing new was sent)."""
        if memory is not None:
            self._sent_memory[turn.session.conversation_id] = memory

    async def send_with_memory(self, turn: Turn, send: Callable[[str], Awaitable[T]]) -> T:
        """``send`` the turn's message, after the memory and a blank line when the memory
        changed since the conversation was last sent it; the memory counts as sent once
        ``send`` returns (after a failed request it is sent again next turn)."""
        memory = self.new_memory(turn)
        result = await send(f"{memory}\n\n{turn.message}" if memory else turn.message)
        self.memory_sent(turn, memory)
        return result

    def end_call(self, session: ConversationSession, handoff_data: str = CALL_ENDED) -> bool:
        """After this turn's reply, end the call (ConversationRelay ``end`` with
        ``handoff_data``); ``False`` (nothing done) when the session is not a call."""
        if Channel(session.channel) != Channel.VOICE:
            return False
        session.pending_handoff_data = PendingHandoffData(handoff_data=handoff_data)
        return True

    async def forget(self, session: ConversationSession) -> None:
        await super().forget(session)
        self._sent_memory.pop(session.conversation_id, None)


def reply_text(texts: Iterable[object]) -> str:
    """An agent's text messages as one reply: each stripped, blank ones dropped, joined by
    spaces."""
    return " ".join(text for text in (str(t).strip() for t in texts) if text)
