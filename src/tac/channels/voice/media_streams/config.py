"""What every Media Streams provider's configuration has."""

from __future__ import annotations

from tac.channels.voice._base import VoiceProviderConfig
from tac.models.stream import VoiceTwiMLOptionsMediaStreams

__all__ = ["MediaStreamsProviderConfig"]


class MediaStreamsProviderConfig(VoiceProviderConfig):
    """``default_twiml_options`` shape every call's ``<Connect><Stream>``."""

    default_twiml_options: VoiceTwiMLOptionsMediaStreams | None = None
