"""Agent Engine connectors at ``twilio-agent-connect-google``'s module path."""

from tac_google.connectors.agent_platform.adk_connector import ADKAgentEngineConnector

__all__ = ["ADKAgentEngineConnector"]
