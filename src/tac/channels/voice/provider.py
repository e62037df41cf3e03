"""The reference's import path of ``VoiceProvider`` and ``VoiceProviderConfig``."""

from tac.channels.voice._base import VoiceProvider, VoiceProviderConfig

__all__ = ["VoiceProvider", "VoiceProviderConfig"]
