"""Connectors for agents deployed to Agent Platform Runtime (Agent Engine), at
``twilio-agent-connect-google``'s module path."""

from tac_google.connectors.agent_platform.adk_connector import ADKAgentEngineConnector
from tac_google.connectors.agent_platform.studio_connector import StudioAgentEngineConnector

__all__ = ["ADKAgentEngineConnector", "StudioAgentEngineConnector"]
