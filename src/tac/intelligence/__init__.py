"""Conversation Intelligence: operator results from a rule's webhook, written to Memory.

``TAC`` builds an :class:`OperatorResultProcessor` (``tac.ci_processor``) when
``CONVERSATION_INTELLIGENCE_CONFIGURATION_ID`` is set, and the server routes
``POST /ci-webhook`` to it (``TAC.process_cintel_event``).
"""

from tac.core.config import ConversationIntelligenceConfig
from tac.intelligence._processor import (
    InvalidOperatorEventError,
    MemoryWriter,
    OperatorProcessingResult,
    OperatorResultProcessor,
)

__all__ = [
    "ConversationIntelligenceConfig",
    "InvalidOperatorEventError",
    "MemoryWriter",
    "OperatorProcessingResult",
    "OperatorResultProcessor",
]
