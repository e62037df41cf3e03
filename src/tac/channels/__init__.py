"""Channels: voice (ConversationRelay) and messaging (SMS, WhatsApp, RCS, Chat)."""

from tac.channels.base import BaseChannel
from tac.channels.chat import ChatChannel, ChatChannelConfig
from tac.channels.messaging import MessagingChannel, MessagingChannelConfig
from tac.channels.rcs import RCSChannel, RCSChannelConfig
from tac.channels.sms import SMSChannel, SMSChannelConfig
from tac.channels.voice import VoiceChannel, VoiceChannelConfig
from tac.channels.whatsapp import WhatsAppChannel, WhatsAppChannelConfig

__all__ = [
    "BaseChannel",
    "ChatChannel",
    "ChatChannelConfig",
    "MessagingChannel",
    "MessagingChannelConfig",
    "RCSChannel",
    "RCSChannelConfig",
    "SMSChannel",
    "SMSChannelConfig",
    "VoiceChannel",
    "VoiceChannelConfig",
    "WhatsAppChannel",
    "WhatsAppChannelConfig",
]
