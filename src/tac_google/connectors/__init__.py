"""Connectors for Google agent runtimes, at ``twilio-agent-connect-google``'s import paths."""

from tac_google.connectors.adk import (
    ADKAgentConnector,
    ADKAgentEngineConnector,
    create_handoff_tool,
    to_adk_tool,
)

__all__ = [
    "ADKAgentConnector",
    "ADKAgentEngineConnector",
    "create_handoff_tool",
    "to_adk_tool",
]
