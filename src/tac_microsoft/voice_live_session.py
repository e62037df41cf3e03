"""``VoiceLiveSession`` at ``twilio-agent-connect-microsoft``'s module path."""

from tac_microsoft.voice_live_connector import VoiceLiveSession

__all__ = ["VoiceLiveSession"]
