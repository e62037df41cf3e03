"""CX Agent Studio's native speech-to-speech voice (its configuration only, for now)."""

from tac_google.connectors.cx_agent_studio.voice_s2s.config import VoiceS2SConfig

__all__ = ["VoiceS2SConfig"]
