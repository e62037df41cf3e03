"""Stores for Agent Framework sessions."""

from tac_microsoft.agent_framework_types import AgentSessionStore
from tac_microsoft.stores.file import FileAgentSessionStore
from tac_microsoft.stores.in_memory import InMemoryAgentSessionStore

__all__ = ["AgentSessionStore", "FileAgentSessionStore", "InMemoryAgentSessionStore"]
