"""WhatsApp through Conversation Orchestrator: the agent writes from ``TWILIO_WHATSAPP_NUMBER``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tac.channels.messaging import MessagingChannel, MessagingChannelConfig
from tac.core.errors import TACConfigError
from tac.core.tac import TAC
from tac.models.session import Channel

__all__ = ["WhatsAppChannel", "WhatsAppChannelConfig"]


class WhatsAppChannelConfig(MessagingChannelConfig):
    """Settings of :class:`WhatsAppChannel` (``memory_mode``, ``dedup_capacity``)."""


class WhatsAppChannel(MessagingChannel):
    """WhatsApp: needs ``TWILIO_WHATSAPP_NUMBER`` (``whatsapp:+1…``), the agent's sender.

    ::

        whatsapp_channel = WhatsAppChannel(tac, config=WhatsAppChannelConfig(memory_mode="always"))
    """

    channel = Channel.WHATSAPP

    def __init__(
        self, tac: TAC, config: WhatsAppChannelConfig | Mapping[str, Any] | None = None
    ) -> None:
        self.config = self._coerce_config(WhatsAppChannelConfig, config)
        super().__init__(
            tac, dedup_capacity=self.config.dedup_capacity, memory_mode=self.config.memory_mode
        )

    def _resolve_agent_address(self) -> str:
        number = (self.tac.config.whatsapp_number or "").strip()
        if not number:
            raise TACConfigError(
                "TWILIO_WHATSAPP_NUMBER",
                "WhatsAppChannel needs your WhatsApp sender, e.g. whatsapp:+15005550006",
            )
        if not number.lower().startswith("whatsapp:"):
            number = f"whatsapp:{number}"
        return number
