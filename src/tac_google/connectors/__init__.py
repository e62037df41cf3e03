"""Connectors for Google agent runtimes, at ``twilio-agent-connect-google``'s import paths."""

from tac_google.connectors._rest import GoogleAPIError
from tac_google.connectors.adk import (
    ADKAgentConnector,
    ADKAgentEngineConnector,
    create_handoff_tool,
    to_adk_tool,
)
from tac_google.connectors.agent_platform.studio_connector import StudioAgentEngineConnector
from tac_google.connectors.conversational_agents_connector import ConversationalAgentsConnector
from tac_google.connectors.cx_agent_studio import (
    CXAgentStudioConnector,
    VoiceS2SChannel,
    VoiceS2SConfig,
)

__all__ = [
    "ADKAgentConnector",
    "ADKAgentEngineConnector",
    "CXAgentStudioConnector",
    "ConversationalAgentsConnector",
    "GoogleAPIError",
    "StudioAgentEngineConnector",
    "VoiceS2SChannel",
    "VoiceS2SConfig",
    "create_handoff_tool",
    "to_adk_tool",
]
