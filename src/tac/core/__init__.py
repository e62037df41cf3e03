"""The core: :class:`TAC`, its configuration and logging."""

from tac.core.config import (
    CALL_EVENT_KINDS,
    CallEventKind,
    ConversationIntelligenceConfig,
    TACConfig,
    TwilioMemoryConfig,
)
from tac.core.errors import TACConfigError
from tac.core.logging import get_logger
from tac.core.partner import PartnerConnector
from tac.core.tac import TAC

__all__ = [
    "CALL_EVENT_KINDS",
    "TAC",
    "CallEventKind",
    "ConversationIntelligenceConfig",
    "PartnerConnector",
    "TACConfig",
    "TACConfigError",
    "TwilioMemoryConfig",
    "get_logger",
]
