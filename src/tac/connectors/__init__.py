"""Agent frameworks on TAC: connectors, the router that lets several share one TAC, and the
conversation history they keep.

Framework connectors import their framework only in their own module:
``tac.connectors.openai_agents`` (``pip install "opentac[openai]"``) and
``tac.connectors.langgraph`` (``pip install "opentac[langgraph]"``).
"""

from tac.connectors._base import (
    ChannelHandler,
    ChannelsConnector,
    Connector,
    ConnectorRouter,
    Turn,
)
from tac.connectors.history import (
    ConversationHistory,
    InMemoryConversationHistory,
    RedisConversationHistory,
    create_history,
)
from tac.connectors.streaming import ToolFinished, ToolStarted, collect, speak

__all__ = [
    "ChannelHandler",
    "ChannelsConnector",
    "Connector",
    "ConnectorRouter",
    "ConversationHistory",
    "InMemoryConversationHistory",
    "RedisConversationHistory",
    "ToolFinished",
    "ToolStarted",
    "Turn",
    "collect",
    "create_history",
    "speak",
]
