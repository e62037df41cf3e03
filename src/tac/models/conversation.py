"""Conversation Orchestrator v2 wire models (``conversations.twilio.com``) and its webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from tac._errors import TACError
from tac.models._base import WireModel, first_error

__all__ = [
    "KNOWN_EVENT_TYPES",
    "ActionChannelSettings",
    "ActionParticipantRef",
    "ActionResponse",
    "ActionTextContent",
    "CaptureRule",
    "ChannelSettings",
    "Communication",
    "CommunicationContent",
    "CommunicationParticipant",
    "CommunicationRequest",
    "CommunicationsListResponse",
    "ConversationConfiguration",
    "ConversationRequest",
    "ConversationResponse",
    "ConversationStatus",
    "ConversationUpdatedData",
    "ConversationsListResponse",
    "PaginationMeta",
    "Participant",
    "ParticipantAddress",
    "ParticipantRequest",
    "ParticipantResponse",
    "ParticipantType",
    "ParticipantsListResponse",
    "SendMessageActionPayload",
    "SendMessageActionRequest",
    "StatusCallback",
    "StatusTimeouts",
    "Transcription",
    "TranscriptionWord",
    "UpdateConversationRequest",
    "WebhookEvent",
    "WebhookEventType",
    "WebhookPayloadError",
]

ConversationStatus = Literal["ACTIVE", "INACTIVE", "CLOSED"]
ParticipantType = Literal["HUMAN_AGENT", "CUSTOMER", "AI_AGENT", "AGENT", "UNKNOWN"]
WebhookEventType = Literal[
    "CONVERSATION_CREATED",
    "CONVERSATION_UPDATED",
    "PARTICIPANT_ADDED",
    "PARTICIPANT_UPDATED",
    "PARTICIPANT_REMOVED",
    "COMMUNICATION_CREATED",
    "COMMUNICATION_UPDATED",
]


class PaginationMeta(WireModel):
    key: str | None = None
    page_size: int | None = None
    previous_token: str | None = None
    next_token: str | None = None


class ParticipantAddress(WireModel):
    channel: str
    address: str
    channel_id: str | None = None


class Participant(WireModel):
    """A conversation participant as Orchestrator returns it."""

    id: str
    conversation_id: str | None = None
    account_id: str | None = None
    name: str | None = None
    type: str | None = None
    profile_id: str | None = None
    addresses: list[ParticipantAddress] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("addresses", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


ParticipantResponse = Participant


class ParticipantRequest(WireModel):
    """Create (POST) or replace (PUT) a participant."""

    addresses: list[ParticipantAddress]
    type: str | None = None
    name: str | None = None
    profile_id: str | None = None


class ParticipantsListResponse(WireModel):
    participants: list[Participant] = Field(default_factory=list)
    meta: PaginationMeta | None = None


class ConversationResponse(WireModel):
    id: str
    account_id: str | None = None
    configuration_id: str | None = None
    status: str | None = None
    name: str | None = None
    metadata: dict[str, str] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ConversationRequest(WireModel):
    configuration_id: str
    name: str | None = None
    participants: list[ParticipantRequest] | None = None
    metadata: dict[str, str] | None = None


class UpdateConversationRequest(WireModel):
    status: ConversationStatus
    name: str | None = None


class ConversationsListResponse(WireModel):
    conversations: list[ConversationResponse] = Field(default_factory=list)
    meta: PaginationMeta | None = None


class TranscriptionWord(WireModel):
    text: str
    start_time: datetime | float | None = None
    end_time: datetime | float | None = None


class Transcription(WireModel):
    channel: int | None = None
    confidence: float | None = None
    engine: str | None = None
    words: list[TranscriptionWord] = Field(default_factory=list)


class CommunicationContent(WireModel):
    type: str = "TEXT"
    text: str | None = None
    transcription: Transcription | None = None


class CommunicationParticipant(WireModel):
    address: str | None = None
    channel: str | None = None
    participant_id: str | None = None
    delivery_status: str | None = None


class Communication(WireModel):
    """A message (or transcription) in a conversation."""

    id: str
    conversation_id: str | None = None
    account_id: str | None = None
    author: CommunicationParticipant
    content: CommunicationContent = Field(default_factory=CommunicationContent)
    recipients: list[CommunicationParticipant] = Field(default_factory=list)
    channel_id: str | None = None
    resource_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    occurred_at: datetime | None = None

    @field_validator("recipients", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class CommunicationRequest(WireModel):
    """The body of ``POST /v2/Conversations/{id}/Communications`` (same ``resourceId`` updates)."""

    author: CommunicationParticipant
    content: CommunicationContent
    recipients: list[CommunicationParticipant] = Field(min_length=1)
    channel_id: str | None = None
    resource_id: str | None = None
    occurred_at: datetime | None = None


class CommunicationsListResponse(WireModel):
    communications: list[Communication] = Field(default_factory=list)
    meta: PaginationMeta | None = None


class StatusCallback(WireModel):
    url: str
    method: str = "POST"


class StatusTimeouts(WireModel):
    inactive: int | None = None
    closed: int | None = None


class CaptureRule(WireModel):
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    metadata: dict[str, Any] | None = None


class ChannelSettings(WireModel):
    status_timeouts: StatusTimeouts | None = None
    capture_rules: list[CaptureRule] | None = None


class ConversationConfiguration(WireModel):
    id: str
    display_name: str | None = None
    description: str | None = None
    conversation_grouping_type: str | None = None
    memory_store_id: str | None = None
    channel_settings: dict[str, ChannelSettings] | None = None
    status_callbacks: list[StatusCallback] | None = None
    intelligence_configuration_ids: list[str] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int | None = None


class ActionParticipantRef(WireModel):
    participant_id: str | None = None
    channel: str | None = None
    address: str | None = None


class ActionTextContent(WireModel):
    text: str


class ActionChannelSettings(WireModel):
    """Channel settings passed through to the channel (``channelId``, ...)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    channel_id: str | None = None


class SendMessageActionPayload(WireModel):
    from_: ActionParticipantRef = Field(alias="from")
    to: list[ActionParticipantRef]
    content: ActionTextContent
    channel_settings: ActionChannelSettings | None = None


class SendMessageActionRequest(WireModel):
    type: Literal["SEND_MESSAGE"] = "SEND_MESSAGE"
    payload: SendMessageActionPayload


class ActionResponse(WireModel):
    id: str
    type: str | None = None
    status: str | None = None
    conversation_id: str | None = None
    created_at: datetime | None = None


class ConversationUpdatedData(WireModel):
    """``data`` of a ``CONVERSATION_*`` webhook: the conversation resource."""

    id: str
    account_id: str | None = None
    configuration_id: str | None = None
    status: str | None = None
    name: str | None = None


class WebhookPayloadError(TACError, ValueError):
    """A webhook body that is not a valid event (the server answers 400 with this message)."""


class WebhookEvent(WireModel):
    """The envelope of every Orchestrator webhook: ``{eventType, timestamp, data}``.

    :meth:`parse` validates the envelope and, for known event types, the shape of ``data``.
    """

    event_type: str
    timestamp: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    _parsed: WireModel | None = PrivateAttr(default=None)

    @property
    def is_known(self) -> bool:
        return self.event_type in _EVENT_DATA

    @classmethod
    def parse(cls, payload: Any) -> WebhookEvent:
        """Validate a decoded JSON body; raise :class:`WebhookPayloadError` explaining why not."""
        if not isinstance(payload, dict):
            raise WebhookPayloadError("webhook payload must be a JSON object")
        event_type = payload.get("eventType")
        if not isinstance(event_type, str) or event_type not in _EVENT_DATA:
            return cls(event_type=str(event_type or ""), data={})
        data = payload.get("data")
        if not isinstance(data, dict):
            raise WebhookPayloadError(f"{event_type}: 'data' must be an object")
        try:
            event = cls.model_validate(payload)
            event._parsed = _EVENT_DATA[event_type].model_validate(data)
        except ValidationError as exc:
            where, message = first_error(exc, "payload")
            raise WebhookPayloadError(f"{event_type}: invalid {where}: {message}") from None
        return event

    def communication(self) -> Communication:
        if isinstance(self._parsed, Communication):
            return self._parsed  # validated once by parse()
        return Communication.model_validate(self.data)

    def conversation(self) -> ConversationUpdatedData:
        if isinstance(self._parsed, ConversationUpdatedData):
            return self._parsed
        return ConversationUpdatedData.model_validate(self.data)

    def participant(self) -> Participant:
        return Participant.model_validate(self.data)


_EVENT_DATA: dict[str, type[WireModel]] = {
    "CONVERSATION_CREATED": ConversationUpdatedData,
    "CONVERSATION_UPDATED": ConversationUpdatedData,
    "PARTICIPANT_ADDED": Participant,
    "PARTICIPANT_UPDATED": Participant,
    "PARTICIPANT_REMOVED": Participant,
    "COMMUNICATION_CREATED": Communication,
    "COMMUNICATION_UPDATED": Communication,
}

#: The Orchestrator event types :meth:`WebhookEvent.parse` validates (others are ignored).
KNOWN_EVENT_TYPES: frozenset[str] = frozenset(_EVENT_DATA)
