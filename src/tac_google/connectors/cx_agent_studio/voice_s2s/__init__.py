"""CX Agent Studio's native speech-to-speech voice, at ``twilio-agent-connect-google``'s
module path."""

from tac_google.connectors.cx_agent_studio.voice_s2s.channel import CESSpeechModel, VoiceS2SChannel
from tac_google.connectors.cx_agent_studio.voice_s2s.config import VoiceS2SConfig

__all__ = ["CESSpeechModel", "VoiceS2SChannel", "VoiceS2SConfig"]
