"""Speech-to-speech calls: Twilio Media Streams bridged to OpenAI Realtime.

``VoiceChannel(tac, config=OpenAIRealtimeProviderConfig(default_session_config={"model":
"gpt-realtime", "instructions": "..."}))``; needs ``pip install 'opentac[openai-realtime]'``.
"""

from tac.channels.voice.media_streams.openai_realtime.provider import (
    TWILIO_AUDIO_FORMAT_FOR_REALTIME,
    OpenAIRealtimeProvider,
    OpenAIRealtimeProviderConfig,
)
from tac.channels.voice.media_streams.twiml import generate_twiml
from tac.models.stream import (
    InitiateVoiceConversationOptionsMediaStreams,
    StreamStartMessage,
    VoiceTwiMLOptionsMediaStreams,
)

InitiateVoiceConversationOptionsOpenAIRealtime = InitiateVoiceConversationOptionsMediaStreams
"""An outbound call; ``session_config`` is this call's Realtime session."""

__all__ = [
    "TWILIO_AUDIO_FORMAT_FOR_REALTIME",
    "InitiateVoiceConversationOptionsOpenAIRealtime",
    "OpenAIRealtimeProvider",
    "OpenAIRealtimeProviderConfig",
    "StreamStartMessage",
    "VoiceTwiMLOptionsMediaStreams",
    "generate_twiml",
]
