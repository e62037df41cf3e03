"""Speech-to-speech calls: Twilio Media Streams bridged to OpenAI GPT-Live.

``VoiceChannel(tac, config=GPTLiveProviderConfig(default_session_config={"model": ...}))``;
needs ``pip install 'opentac[gpt-live]'``.
"""

from tac.channels.voice.media_streams.gpt_live.provider import (
    GPT_LIVE_SESSION_ID_METADATA_KEY,
    TWILIO_AUDIO_FORMAT_FOR_GPT_LIVE,
    GPTLiveProvider,
    GPTLiveProviderConfig,
)
from tac.channels.voice.media_streams.twiml import generate_twiml
from tac.models.stream import (
    InitiateVoiceConversationOptionsMediaStreams,
    StreamStartMessage,
    VoiceTwiMLOptionsMediaStreams,
)

InitiateVoiceConversationOptionsGPTLive = InitiateVoiceConversationOptionsMediaStreams
"""An outbound call; ``session_config`` is this call's GPT-Live session."""

__all__ = [
    "GPT_LIVE_SESSION_ID_METADATA_KEY",
    "TWILIO_AUDIO_FORMAT_FOR_GPT_LIVE",
    "GPTLiveProvider",
    "GPTLiveProviderConfig",
    "InitiateVoiceConversationOptionsGPTLive",
    "StreamStartMessage",
    "VoiceTwiMLOptionsMediaStreams",
    "generate_twiml",
]
