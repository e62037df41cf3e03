"""What the OpenAI Media Streams providers share."""

from tac.channels.voice.media_streams.shared.config import MediaStreamsOpenAIProviderConfig
from tac.channels.voice.media_streams.shared.openai_provider import (
    OPENAI_USER_AGENT,
    MediaStreamsOpenAIProvider,
)

__all__ = ["OPENAI_USER_AGENT", "MediaStreamsOpenAIProvider", "MediaStreamsOpenAIProviderConfig"]
