"""Conversation Orchestrator v2 request bodies, validated like Twilio validates them.

The sandbox's own models of Twilio's wire shapes (never ``tac.models``): a second, independent
reading of the same spec. Optional fields accept ``null`` because the official ``twilio``
library sends every unset field as ``null``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Channel = Literal["VOICE", "SMS", "RCS", "WHATSAPP", "CHAT", "VIDEO", "EMAIL"]
SendChannel = Literal["SMS", "RCS", "WHATSAPP", "CHAT"]
Status = Literal["ACTIVE", "INACTIVE", "CLOSED"]
ParticipantType = Literal["HUMAN_AGENT", "CUSTOMER", "AI_AGENT", "AGENT", "UNKNOWN"]
Grouping = Literal[
    "GROUP_BY_PROFILE",
    "GROUP_BY_PARTICIPANT_ADDRESSES",
    "GROUP_BY_PARTICIPANT_ADDRESSES_AND_CHANNEL_TYPE",
]
DeliveryStatus = Literal["INITIATED", "IN_PROGRESS", "DELIVERED", "READ", "COMPLETED", "FAILED"]
NonEmpty = Annotated[str, StringConstraints(min_length=1)]
Metadata = Annotated[
    dict[str, Annotated[str, StringConstraints(max_length=512)]], Field(max_length=8)
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def given(self) -> dict[str, Any]:
        """The fields sent with a non-null value, in wire (alias) names."""
        return self.model_dump(by_alias=True, exclude_none=True)


class StatusCallbackIn(_In):
    url: NonEmpty
    method: Literal["POST", "GET"] = "POST"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL with a host")
        return value


class StatusTimeoutsIn(_In):
    inactive: int | None = Field(default=None, ge=1, description="Minutes (Twilio)")
    closed: int | None = Field(default=None, ge=1, description="Minutes (Twilio)")


class CaptureRuleIn(_In):
    from_: NonEmpty = Field(alias="from")
    to: NonEmpty
    metadata: dict[str, str] | None = None


class ChannelSettingIn(_In):
    statusTimeouts: StatusTimeoutsIn | None = None
    captureRules: list[CaptureRuleIn] | None = None


class ConfigurationIn(_In):
    """POST/PUT/PATCH ``/v2/ControlPlane/Configurations``."""

    displayName: (
        Annotated[str, StringConstraints(max_length=32, pattern=r"^[a-zA-Z0-9\-_ ]+$")] | None
    ) = None
    description: Annotated[str, StringConstraints(max_length=512)] | None = None
    conversationGroupingType: Grouping | None = None
    memoryStoreId: str | None = None
    channelSettings: dict[Channel, ChannelSettingIn] | None = None
    statusCallbacks: Annotated[list[StatusCallbackIn], Field(max_length=20)] | None = None
    intelligenceConfigurationIds: Annotated[list[str], Field(max_length=5)] | None = None
    traitExtractionStrategyIds: list[str] | None = None
    observationExtractionStrategyIds: list[str] | None = None
    memoryExtractionEnabled: bool | None = None
    redactionConfigurationId: str | None = None
    conversationsV1Bridge: dict[str, Any] | None = None


class ConversationConfigIn(_In):
    """A conversation's own configuration overrides (create)."""

    conversationGroupingType: Grouping | None = None
    memoryStoreId: str | None = None
    channelSettings: dict[Channel, ChannelSettingIn] | None = None
    memoryExtractionEnabled: bool | None = None
    intelligenceConfigurationIds: Annotated[list[str], Field(max_length=5)] | None = None
    traitExtractionStrategyIds: list[str] | None = None
    observationExtractionStrategyIds: list[str] | None = None
    statusCallbacks: Annotated[list[StatusCallbackIn], Field(max_length=20)] | None = None
    workflows: list[dict[str, Any]] | None = None


class AddressIn(_In):
    channel: Channel
    address: NonEmpty
    channelId: str | None = None


class ParticipantIn(_In):
    """POST ``…/Participants`` and each participant of a new conversation."""

    name: str | None = None
    type: ParticipantType | None = None
    profileId: str | None = None
    addresses: Annotated[list[AddressIn], Field(min_length=1)]


class ParticipantReplaceIn(_In):
    """PUT ``…/Participants/{id}``: a full replacement (omitted fields are cleared)."""

    name: str | None = None
    type: ParticipantType | None = None
    profileId: str | None = None
    addresses: list[AddressIn] | None = None


class ConversationCreateIn(_In):
    configurationId: NonEmpty
    name: str | None = None
    configuration: ConversationConfigIn | None = None
    participants: Annotated[list[ParticipantIn], Field(max_length=50)] | None = None
    metadata: Metadata | None = None


class ConversationUpdateIn(_In):
    """PUT ``/v2/Conversations/{id}``."""

    status: Status
    name: str | None = None
    metadata: Metadata | None = None


class ConversationPatchConfigIn(_In):
    statusCallbacks: Annotated[list[StatusCallbackIn], Field(max_length=20)] | None = None


class ConversationPatchIn(_In):
    """PATCH ``/v2/Conversations/{id}`` (``null`` leaves a field as it is)."""

    name: str | None = None
    status: Status | None = None
    configuration: ConversationPatchConfigIn | None = None
    metadata: dict[str, str | None] | None = None


class AuthorIn(_In):
    address: NonEmpty
    channel: Channel
    participantId: str | None = None


class RecipientIn(_In):
    address: NonEmpty
    channel: Channel
    participantId: str | None = None
    deliveryStatus: DeliveryStatus | None = None


class WordIn(_In):
    text: str
    startTime: str | None = None
    endTime: str | None = None


class TranscriptionIn(_In):
    channel: int | None = Field(default=None, ge=0, le=1)
    confidence: float | None = Field(default=None, ge=0, le=1)
    engine: str | None = None
    words: list[WordIn] | None = None


class ContentIn(_In):
    type: Literal["TEXT", "TRANSCRIPTION"] = "TEXT"
    text: str
    transcription: TranscriptionIn | None = None


class CommunicationIn(_In):
    """POST ``…/Communications``."""

    author: AuthorIn
    content: ContentIn
    recipients: Annotated[list[RecipientIn], Field(min_length=1)]
    channelId: str | None = None
    resourceId: str | None = None
    occurredAt: str | None = None


class ParticipantRefIn(_In):
    participantId: str | None = None
    address: str | None = None
    channel: Channel | None = None


class SendContentIn(_In):
    text: str | None = None
    contentId: str | None = None
    variables: dict[str, str] | None = None
    mediaUrls: list[str] | None = None


class SendMessagePayloadIn(_In):
    from_: ParticipantRefIn = Field(alias="from")
    to: Annotated[list[ParticipantRefIn], Field(min_length=1)]
    content: SendContentIn
    channelSettings: dict[str, Any] | None = None


class ActionIn(_In):
    """POST ``…/Actions``: the payload is checked per ``type`` by the route."""

    type: NonEmpty
    payload: dict[str, Any]
