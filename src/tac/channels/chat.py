"""Chat (web and in-app chat) through Conversation Orchestrator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from tac.channels.messaging import MessagingChannel, MessagingChannelConfig
from tac.core.tac import TAC
from tac.models.outbound import (
    InitiateChatConversationOptions,
    InitiateConversationResult,
    InitiateMessagingConversationOptions,
)
from tac.models.session import Channel

__all__ = ["ChatChannel", "ChatChannelConfig"]


class ChatChannelConfig(MessagingChannelConfig):
    """Settings of :class:`ChatChannel`: ``agent_address`` is the agent's chat identity."""

    agent_address: str = Field(default="ai-assistant", min_length=1)


class ChatChannel(MessagingChannel):
    """Chat: replies carry the chat's ``channelId`` (``channelSettings.channelId``), as
    Orchestrator requires for CHAT. Chat identities have no phone or email, so the customer's
    profile is the one Orchestrator linked (``profileId``), if any.

    ::

        chat_channel = ChatChannel(tac, config=ChatChannelConfig(memory_mode="once"))
    """

    channel = Channel.CHAT
    reconcile_customer_type: ClassVar[bool] = False

    def __init__(
        self, tac: TAC, config: ChatChannelConfig | Mapping[str, Any] | None = None
    ) -> None:
        self.config = self._coerce_config(ChatChannelConfig, config)
        super().__init__(
            tac, dedup_capacity=self.config.dedup_capacity, memory_mode=self.config.memory_mode
        )

    def _resolve_agent_address(self) -> str:
        return self.config.agent_address.strip()

    async def initiate_outbound_conversation(
        self, options: InitiateMessagingConversationOptions | Mapping[str, Any]
    ) -> InitiateConversationResult:
        """Write to a chat first: ``InitiateChatConversationOptions(to, message, channel_id)``."""
        return await super().initiate_outbound_conversation(options)

    def _outbound_options_class(self) -> type[InitiateMessagingConversationOptions]:
        return InitiateChatConversationOptions
