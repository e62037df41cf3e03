"""The channels a partner-style connector builds, and sending a reply on the right one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from tac.channels import (
    ChatChannel,
    ChatChannelConfig,
    RCSChannel,
    RCSChannelConfig,
    SMSChannel,
    SMSChannelConfig,
    VoiceChannel,
    VoiceChannelConfig,
    WhatsAppChannel,
    WhatsAppChannelConfig,
)
from tac.connectors.streaming import collect
from tac.models.session import Channel, ConversationSession

if TYPE_CHECKING:
    from tac.channels.base import BaseChannel
    from tac.channels.messaging import MessagingChannel
    from tac.core.tac import TAC

__all__ = ["ChannelResponse", "ConnectorChannels"]

ChannelResponse = str | AsyncIterator[str]
"""A reply: the whole text, or a stream of tokens."""


class ConnectorChannels:
    """Voice, SMS and Chat always (in ConversationRelay-only mode, voice alone); RCS and
    WhatsApp when their sender is configured (``TWILIO_RCS_SENDER_ID``,
    ``TWILIO_WHATSAPP_NUMBER``). The ``*_config`` arguments tune a channel (memory mode, …);
    they never turn one on or off.

    Attributes: ``voice``, ``sms``, ``chat``, ``rcs`` / ``whatsapp`` (or ``None``), and
    ``messaging``: every messaging channel, for ``TACFastAPIServer(messaging_channels=...)``.
    """

    def __init__(
        self,
        tac: TAC,
        voice_config: VoiceChannelConfig | Mapping[str, Any] | None = None,
        sms_config: SMSChannelConfig | Mapping[str, Any] | None = None,
        rcs_config: RCSChannelConfig | Mapping[str, Any] | None = None,
        whatsapp_config: WhatsAppChannelConfig | Mapping[str, Any] | None = None,
        chat_config: ChatChannelConfig | Mapping[str, Any] | None = None,
    ) -> None:
        self.voice = VoiceChannel(tac, config=voice_config)
        messaging = tac.is_orchestrator_enabled()  # relay-only mode has voice alone
        config = tac.config
        self.sms = SMSChannel(tac, config=sms_config) if messaging else None
        self.chat = ChatChannel(tac, config=chat_config) if messaging else None
        self.rcs = RCSChannel(tac, rcs_config) if messaging and config.rcs_sender_id else None
        self.whatsapp = (
            WhatsAppChannel(tac, config=whatsapp_config)
            if messaging and config.whatsapp_number
            else None
        )
        self.messaging: list[MessagingChannel] = [
            c for c in (self.sms, self.rcs, self.whatsapp, self.chat) if c is not None
        ]
        self._by_channel: dict[Channel, BaseChannel] = {Channel.VOICE: self.voice}
        for channel in self.messaging:
            self._by_channel[Channel(channel.channel)] = channel

    @property
    def names(self) -> list[Channel]:
        """The channels built."""
        return list(self._by_channel)

    def get(self, channel_name: str) -> BaseChannel | None:
        """The channel called ``channel_name`` (any case), or ``None`` when not built."""
        try:
            return self._by_channel.get(Channel(channel_name.lower()))
        except ValueError:
            return None

    async def send(self, context: ConversationSession, response: ChannelResponse) -> None:
        """Send a reply on the session's channel: streamed to voice, whole to messaging.

        Raises:
            ValueError: the session's channel was not built (its sender is not configured).
        """
        channel = self.get(str(context.channel))
        if channel is None:
            raise ValueError(
                f"no {context.channel} channel: set its sender (TWILIO_RCS_SENDER_ID / "
                "TWILIO_WHATSAPP_NUMBER) to enable it"
            )
        if not isinstance(response, str) and Channel(context.channel) != Channel.VOICE:
            response = await collect(response)
        await channel.send_response(context.conversation_id, response)
