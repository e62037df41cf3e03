"""SMS through Conversation Orchestrator: the agent texts from ``TWILIO_PHONE_NUMBER``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tac.channels.messaging import MessagingChannel, MessagingChannelConfig
from tac.core.errors import TACConfigError
from tac.core.tac import TAC
from tac.models.session import Channel

__all__ = ["SMSChannel", "SMSChannelConfig"]


class SMSChannelConfig(MessagingChannelConfig):
    """Settings of :class:`SMSChannel` (``memory_mode``, ``dedup_capacity``)."""


class SMSChannel(MessagingChannel):
    """SMS: inbound texts to ``TWILIO_PHONE_NUMBER`` reach ``on_message_ready``; replies go back
    from that number.

    ::

        sms_channel = SMSChannel(tac, config=SMSChannelConfig(memory_mode="always"))
    """

    channel = Channel.SMS

    def __init__(
        self, tac: TAC, config: SMSChannelConfig | Mapping[str, Any] | None = None
    ) -> None:
        self.config = self._coerce_config(SMSChannelConfig, config)
        super().__init__(
            tac, dedup_capacity=self.config.dedup_capacity, memory_mode=self.config.memory_mode
        )

    def _resolve_agent_address(self) -> str:
        number = (self.tac.config.phone_number or "").strip()
        if not number:
            raise TACConfigError("TWILIO_PHONE_NUMBER", "SMSChannel sends from this number")
        return number
