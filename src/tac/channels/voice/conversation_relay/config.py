"""The reference's import path of ``ConversationRelayProviderConfig`` (``VoiceChannelConfig``)."""

from tac.channels.voice.conversation_relay.provider import ConversationRelayProviderConfig

VoiceChannelConfig = ConversationRelayProviderConfig

__all__ = ["ConversationRelayProviderConfig", "VoiceChannelConfig"]
