"""``ADKAgentEngineConnector`` at ``twilio-agent-connect-google``'s module path."""

from tac_google.connectors.adk import ADKAgentEngineConnector

__all__ = ["ADKAgentEngineConnector"]
