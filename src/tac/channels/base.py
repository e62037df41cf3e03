"""What every channel shares: its TAC, its memory mode, webhook handling and replies."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from tac.models.conversation import WebhookEvent
from tac.models.memory import MemoryMode
from tac.models.session import Channel

if TYPE_CHECKING:
    from tac.core.inbound import InboundDelivery
    from tac.core.tac import TAC

__all__ = ["AGENT_TYPES", "BaseChannel"]

AGENT_TYPES = frozenset({"AGENT", "AI_AGENT"})


class BaseChannel(ABC):
    """A channel: turns Twilio's events into ``on_message_ready`` calls and sends replies."""

    channel: Channel

    def __init__(self, tac: TAC, memory_mode: MemoryMode = "never") -> None:
        if memory_mode not in ("always", "once", "never"):
            raise ValueError(
                f"memory_mode must be 'always', 'once' or 'never', got {memory_mode!r}"
            )
        self.tac = tac
        self.memory_mode: MemoryMode = memory_mode

    def get_channel_name(self) -> str:
        """The channel's name as Twilio writes it on the wire (``"SMS"``, ``"VOICE"``)."""
        return self.channel.wire

    def accepts(self, event: WebhookEvent) -> bool:
        """A cheap synchronous check before the server claims ``event``: ``False`` drops it
        (answered 200) without starting a turn. Default: every routed event is accepted."""
        return True

    @abstractmethod
    async def process_webhook(
        self, webhook_data: WebhookEvent | dict[str, Any], idempotency_token: str | None = None
    ) -> None:
        """Handle one Conversation Orchestrator event addressed to this channel."""

    async def handle_event(self, event: WebhookEvent, delivery: InboundDelivery | None) -> None:
        """The server's entry for an accepted event: :meth:`process_webhook` unless the channel
        runs turns that finish ``delivery`` themselves (the server finishes it otherwise)."""
        await self.process_webhook(event)

    @abstractmethod
    async def send_response(
        self, conversation_id: str, response: Any, role: str | None = None
    ) -> None:
        """Send a reply in a conversation on this channel."""

    async def start(self) -> None:
        """Start background work when the server starts (voice: commands from other
        instances). Default: nothing."""
        return None

    async def aclose(self) -> None:
        """Release what the channel holds (connections, tasks). Default: nothing."""
        return None
