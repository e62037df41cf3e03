"""RCS through Conversation Orchestrator: the agent writes from ``TWILIO_RCS_SENDER_ID``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tac.channels.messaging import MessagingChannel, MessagingChannelConfig
from tac.core.errors import TACConfigError
from tac.core.tac import TAC
from tac.models.session import Channel

__all__ = ["RCSChannel", "RCSChannelConfig"]


class RCSChannelConfig(MessagingChannelConfig):
    """Settings of :class:`RCSChannel` (``memory_mode``, ``dedup_capacity``)."""


class RCSChannel(MessagingChannel):
    """RCS (Rich Communication Services): needs ``TWILIO_RCS_SENDER_ID``, the agent's sender.

    ::

        rcs_channel = RCSChannel(tac, config=RCSChannelConfig(memory_mode="always"))
    """

    channel = Channel.RCS

    def __init__(
        self, tac: TAC, config: RCSChannelConfig | Mapping[str, Any] | None = None
    ) -> None:
        self.config = self._coerce_config(RCSChannelConfig, config)
        super().__init__(
            tac, dedup_capacity=self.config.dedup_capacity, memory_mode=self.config.memory_mode
        )

    def _resolve_agent_address(self) -> str:
        sender = (self.tac.config.rcs_sender_id or "").strip()
        if not sender:
            raise TACConfigError(
                "TWILIO_RCS_SENDER_ID", "RCSChannel needs your RCS sender id (the agent's sender)"
            )
        return sender
