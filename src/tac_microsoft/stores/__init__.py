"""Stores for Agent Framework sessions."""

from typing import Any

from tac_microsoft.agent_framework_types import AgentSessionStore
from tac_microsoft.stores.file import FileAgentSessionStore
from tac_microsoft.stores.in_memory import InMemoryAgentSessionStore

__all__ = [
    "AgentSessionStore",
    "CosmosDBAgentSessionStore",
    "FileAgentSessionStore",
    "InMemoryAgentSessionStore",
]


def __getattr__(name: str) -> Any:
    if name == "CosmosDBAgentSessionStore":  # azure-cosmos is imported on first use
        from tac_microsoft.stores.cosmos import CosmosDBAgentSessionStore

        return CosmosDBAgentSessionStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
