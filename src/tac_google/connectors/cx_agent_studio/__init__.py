"""Agents built in CX Agent Studio (Customer Engagement Suite), at
``twilio-agent-connect-google``'s module path."""

from tac_google.connectors.cx_agent_studio.connector import CXAgentStudioConnector
from tac_google.connectors.cx_agent_studio.voice_s2s import VoiceS2SChannel, VoiceS2SConfig

__all__ = ["CXAgentStudioConnector", "VoiceS2SChannel", "VoiceS2SConfig"]
