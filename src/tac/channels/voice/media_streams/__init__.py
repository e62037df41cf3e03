"""Speech-to-speech voice: Twilio Media Streams bridged to realtime models.

Providers: :mod:`~tac.channels.voice.media_streams.openai_realtime` and
:mod:`~tac.channels.voice.media_streams.gpt_live`. Other models plug in by implementing
:class:`~tac.channels.voice.media_streams.base.SpeechToSpeechModel` (see
:class:`MediaStreamsProvider`).
"""

from tac.channels.voice.media_streams._bridge import (
    MediaStreamsBridgeConfig,
    MediaStreamsProvider,
    SpeechToSpeechProvider,
    SpeechToSpeechProviderConfig,
)
from tac.channels.voice.media_streams.base import (
    CallContext,
    SpeechToSpeechConnection,
    SpeechToSpeechModel,
)
from tac.channels.voice.media_streams.config import MediaStreamsProviderConfig
from tac.channels.voice.media_streams.twiml import TwiMLBuilderMediaStreams, generate_twiml
from tac.models.stream import StreamStartMessage, VoiceTwiMLOptionsMediaStreams

__all__ = [
    "CallContext",
    "MediaStreamsBridgeConfig",
    "MediaStreamsProvider",
    "MediaStreamsProviderConfig",
    "SpeechToSpeechConnection",
    "SpeechToSpeechModel",
    "SpeechToSpeechProvider",
    "SpeechToSpeechProviderConfig",
    "StreamStartMessage",
    "TwiMLBuilderMediaStreams",
    "VoiceTwiMLOptionsMediaStreams",
    "generate_twiml",
]
