"""The voice channel: phone calls through ConversationRelay.

``from tac.channels.voice import VoiceChannel, VoiceChannelConfig``
"""

from tac.channels.voice._base import VoiceProvider, VoiceProviderConfig
from tac.channels.voice.channel import (
    AmdHandler,
    CallStatusHandler,
    InboundCallTwiMLHandler,
    RecordingHandler,
    VoiceChannel,
)
from tac.channels.voice.conversation_relay import (
    CallNotConnectedError,
    ConversationRelayProvider,
    ConversationRelayProviderConfig,
    VoiceChannelConfig,
    generate_twiml,
)
from tac.models.voice import (
    AmdEvent,
    CallOptions,
    CallStatusEvent,
    InterruptMode,
    LanguageConfig,
    RecordingEvent,
    TwiMLRequest,
    VoiceTwiMLOptions,
    VoiceTwiMLOptionsConversationRelay,
)

__all__ = [
    "AmdEvent",
    "AmdHandler",
    "CallNotConnectedError",
    "CallOptions",
    "CallStatusEvent",
    "CallStatusHandler",
    "ConversationRelayProvider",
    "ConversationRelayProviderConfig",
    "InboundCallTwiMLHandler",
    "InterruptMode",
    "LanguageConfig",
    "RecordingEvent",
    "RecordingHandler",
    "TwiMLRequest",
    "VoiceChannel",
    "VoiceChannelConfig",
    "VoiceProvider",
    "VoiceProviderConfig",
    "VoiceTwiMLOptions",
    "VoiceTwiMLOptionsConversationRelay",
    "generate_twiml",
]


def __getattr__(name: str) -> object:
    """The reference's deprecated names (``TwiMLOptions``), with a DeprecationWarning."""
    from tac._compat.aliases import deprecated_attribute

    return deprecated_attribute(__name__, name)
