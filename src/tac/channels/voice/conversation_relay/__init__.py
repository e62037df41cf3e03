"""ConversationRelay: Twilio speaks to the caller; the app exchanges text over a WebSocket."""

from tac.channels.voice.conversation_relay.provider import (
    CallNotConnectedError,
    ConversationRelayProvider,
    ConversationRelayProviderConfig,
)
from tac.channels.voice.conversation_relay.twiml import DEFAULT_WELCOME_GREETING, generate_twiml

VoiceChannelConfig = ConversationRelayProviderConfig
"""The seeds' name for :class:`ConversationRelayProviderConfig` (first-class, not deprecated)."""

__all__ = [
    "DEFAULT_WELCOME_GREETING",
    "CallNotConnectedError",
    "ConversationRelayProvider",
    "ConversationRelayProviderConfig",
    "VoiceChannelConfig",
    "generate_twiml",
]
