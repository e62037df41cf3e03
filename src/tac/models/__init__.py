"""Pydantic models of Twilio's wire payloads and of the session TAC passes to callbacks.

One module per Twilio product; the session and memory wrapper at ``tac.models.session`` and
``tac.models.tac`` (the seeds import them from there).
"""

from tac.models.conversation import (
    ActionChannelSettings,
    ActionParticipantRef,
    ActionResponse,
    ActionTextContent,
    Communication,
    CommunicationContent,
    CommunicationParticipant,
    CommunicationRequest,
    ConversationRequest,
    ConversationResponse,
    PaginationMeta,
    Participant,
    ParticipantAddress,
    ParticipantRequest,
    ParticipantResponse,
    SendMessageActionPayload,
    SendMessageActionRequest,
)
from tac.models.delivery import DeliveryStatus
from tac.models.handoff import HandoffPayload
from tac.models.intelligence import (
    CommunicationsRange,
    ExecutionDetails,
    IntelligenceConfiguration,
    Operator,
    OperatorResultEvent,
    TriggerDetails,
)
from tac.models.knowledge import Knowledge, KnowledgeBase, KnowledgeChunkResult
from tac.models.memory import (
    MemoryCommunication,
    MemoryCommunicationContent,
    MemoryMode,
    MemoryParticipant,
    MemoryRetrievalRequest,
    MemoryRetrievalResponse,
    ObservationInfo,
    ProfileResponse,
    SummaryInfo,
)
from tac.models.outbound import (
    InitiateChatConversationOptions,
    InitiateConversationResult,
    InitiateMessagingConversationOptions,
)
from tac.models.session import AuthorInfo, Channel, ConversationSession, PendingHandoffData
from tac.models.tac import (
    TACCommunication,
    TACCommunicationAuthor,
    TACCommunicationContent,
    TACMemoryResponse,
)
from tac.models.voice import (
    AmdEvent,
    CallOptions,
    CallStatusEvent,
    InitiateVoiceConversationOptions,
    InitiateVoiceConversationResult,
    RecordingEvent,
    VoiceTwiMLOptions,
    VoiceTwiMLOptionsConversationRelay,
)

__all__ = [
    "ActionChannelSettings",
    "ActionParticipantRef",
    "ActionResponse",
    "ActionTextContent",
    "AuthorInfo",
    "Channel",
    "Communication",
    "CommunicationContent",
    "CommunicationParticipant",
    "CommunicationRequest",
    "CommunicationsRange",
    "ConversationRequest",
    "ConversationResponse",
    "ConversationSession",
    "DeliveryStatus",
    "ExecutionDetails",
    "HandoffPayload",
    "InitiateChatConversationOptions",
    "InitiateConversationResult",
    "InitiateMessagingConversationOptions",
    "IntelligenceConfiguration",
    "Knowledge",
    "KnowledgeBase",
    "KnowledgeChunkResult",
    "MemoryCommunication",
    "MemoryCommunicationContent",
    "MemoryMode",
    "MemoryParticipant",
    "MemoryRetrievalRequest",
    "MemoryRetrievalResponse",
    "ObservationInfo",
    "Operator",
    "OperatorResultEvent",
    "PaginationMeta",
    "Participant",
    "ParticipantAddress",
    "ParticipantRequest",
    "ParticipantResponse",
    "PendingHandoffData",
    "ProfileResponse",
    "SendMessageActionPayload",
    "SendMessageActionRequest",
    "SummaryInfo",
    "TACCommunication",
    "TACCommunicationAuthor",
    "TACCommunicationContent",
    "TACMemoryResponse",
    "TriggerDetails",
]
__all__ += [
    "AmdEvent",
    "CallOptions",
    "CallStatusEvent",
    "InitiateVoiceConversationOptions",
    "InitiateVoiceConversationResult",
    "RecordingEvent",
    "VoiceTwiMLOptions",
    "VoiceTwiMLOptionsConversationRelay",
]


def __getattr__(name: str) -> object:
    """The reference's deprecated names (``TwiMLOptions``), with a DeprecationWarning."""
    from tac._compat.aliases import deprecated_attribute

    return deprecated_attribute(__name__, name)
