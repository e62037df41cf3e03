"""Channels: voice (ConversationRelay) and messaging (SMS, WhatsApp, RCS, Chat)."""

from tac.channels.base import BaseChannel as BaseChannel
from tac.channels.voice import VoiceChannel as VoiceChannel
from tac.channels.voice import VoiceChannelConfig as VoiceChannelConfig
