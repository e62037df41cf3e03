"""Microsoft connectors for opentac at ``twilio-agent-connect-microsoft``'s import paths
(``pip install "opentac[microsoft]"``), plus the core names that package re-exports."""

from typing import Any

from tac import TAC, PartnerConnector, TACConfig, get_logger
from tac.channels.chat import ChatChannelConfig
from tac.channels.rcs import RCSChannelConfig
from tac.channels.sms import SMSChannelConfig
from tac.channels.voice import VoiceChannelConfig
from tac.channels.whatsapp import WhatsAppChannelConfig
from tac.models import (
    InitiateChatConversationOptions,
    InitiateConversationResult,
    InitiateMessagingConversationOptions,
    InitiateVoiceConversationOptions,
    InitiateVoiceConversationResult,
)
from tac.models.session import ConversationSession
from tac.models.voice import TwiMLRequest
from tac_microsoft._version import __version__
from tac_microsoft.agent_framework_types import AgentSessionStore
from tac_microsoft.stores import FileAgentSessionStore, InMemoryAgentSessionStore
from tac_microsoft.utils import format_memory_context
from tac_microsoft.voice_live_types import VoiceLiveConfig, VoiceLiveError

__all__ = [
    "TAC",
    "AgentFrameworkConnector",
    "AgentSessionStore",
    "ChatChannelConfig",
    "ConversationSession",
    "CosmosDBAgentSessionStore",
    "FileAgentSessionStore",
    "InMemoryAgentSessionStore",
    "InitiateChatConversationOptions",
    "InitiateConversationResult",
    "InitiateMessagingConversationOptions",
    "InitiateVoiceConversationOptions",
    "InitiateVoiceConversationResult",
    "PartnerConnector",
    "RCSChannelConfig",
    "SMSChannelConfig",
    "StarletteWebSocketAdapter",
    "TACConfig",
    "TACFastAPIServer",
    "TACHostedAgentsApp",
    "TwiMLOptions",
    "TwiMLRequest",
    "VoiceChannelConfig",
    "VoiceLiveConfig",
    "VoiceLiveConnector",
    "VoiceLiveError",
    "WhatsAppChannelConfig",
    "__version__",
    "format_memory_context",
    "get_logger",
]


def __getattr__(name: str) -> Any:
    if name == "TACFastAPIServer":
        from tac.server import TACFastAPIServer

        return TACFastAPIServer
    if name == "TwiMLOptions":  # deprecated in tac too: warns as it does there
        import tac

        return tac.TwiMLOptions
    if name == "AgentFrameworkConnector":
        from tac_microsoft.agent_framework_connector import AgentFrameworkConnector

        return AgentFrameworkConnector
    if name in ("TACHostedAgentsApp", "StarletteWebSocketAdapter"):
        from tac_microsoft import hosted_agents_server

        return getattr(hosted_agents_server, name)
    if name == "CosmosDBAgentSessionStore":
        from tac_microsoft.stores.cosmos import CosmosDBAgentSessionStore

        return CosmosDBAgentSessionStore
    if name == "VoiceLiveConnector":
        from tac_microsoft.voice_live_connector import VoiceLiveConnector

        return VoiceLiveConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
