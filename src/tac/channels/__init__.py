"""Channels: messaging (SMS, WhatsApp, RCS, Chat) through Conversation Orchestrator, and voice."""

from tac.channels.base import BaseChannel
from tac.channels.chat import ChatChannel, ChatChannelConfig
from tac.channels.messaging import MessagingChannel, MessagingChannelConfig
from tac.channels.rcs import RCSChannel, RCSChannelConfig
from tac.channels.sms import SMSChannel, SMSChannelConfig
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
    "WhatsAppChannel",
    "WhatsAppChannelConfig",
]
