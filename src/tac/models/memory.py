"""Conversation Memory v1 wire models (``memory.twilio.com``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from tac.models._base import OptionsModel, WireModel

__all__ = [
    "MemoryCommunication",
    "MemoryCommunicationContent",
    "MemoryMode",
    "MemoryParticipant",
    "MemoryRetrievalRequest",
    "MemoryRetrievalResponse",
    "ObservationCreate",
    "ObservationInfo",
    "ProfileCreateResponse",
    "ProfileLookupRequest",
    "ProfileLookupResponse",
    "ProfileResponse",
    "RecallMeta",
    "SummaryCreate",
    "SummaryInfo",
]

MemoryMode = Literal["always", "once", "never"]
"""When a channel retrieves memory: every turn, the first turn (again after INACTIVE), never."""


class ProfileResponse(WireModel):
    """A customer profile with its traits, grouped (``{"Contact": {"email": ...}}``)."""

    id: str
    created_at: datetime | None = None
    traits: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("traits", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class ProfileLookupRequest(WireModel):
    id_type: str = Field(min_length=2, max_length=30)
    value: str = Field(min_length=1, max_length=255)


class ProfileLookupResponse(WireModel):
    normalized_value: str | None = None
    profiles: list[str] = Field(default_factory=list)

    @field_validator("profiles", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class ProfileCreateResponse(WireModel):
    id: str
    message: str | None = None


class ObservationInfo(WireModel):
    id: str
    content: str
    source: str | None = None
    occurred_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    conversation_ids: list[str] | None = None
    score: float | None = None


class SummaryInfo(WireModel):
    id: str
    content: str
    conversation_id: str | None = None
    source: str | None = None
    occurred_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    score: float | None = None


class MemoryParticipant(WireModel):
    id: str | None = None
    name: str | None = None
    type: str | None = None
    profile_id: str | None = None
    address: str | None = None
    channel: str | None = None
    delivery_status: str | None = None


class MemoryCommunicationContent(WireModel):
    text: str | None = None


class MemoryCommunication(WireModel):
    id: str
    author: MemoryParticipant
    content: MemoryCommunicationContent = Field(default_factory=MemoryCommunicationContent)
    recipients: list[MemoryParticipant] = Field(default_factory=list)
    channel_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class RecallMeta(WireModel):
    query_time: float | None = None


class MemoryRetrievalRequest(WireModel):
    """The body of ``POST /v1/Stores/{store}/Profiles/{profile}/Recall``."""

    conversation_id: str | None = None
    query: str | None = Field(default=None, min_length=1, max_length=1024)
    begin_date: datetime | None = None
    end_date: datetime | None = None
    observations_limit: int = Field(default=20, ge=0, le=100)
    summaries_limit: int = Field(default=5, ge=0, le=100)
    communications_limit: int = Field(default=0, ge=0, le=100)
    relevance_threshold: float = Field(default=0.0, ge=0.0, le=1.0)


class MemoryRetrievalResponse(WireModel):
    """The Recall response; :meth:`parse_lenient` keeps the good items when some are bad."""

    observations: list[ObservationInfo] = Field(default_factory=list)
    summaries: list[SummaryInfo] = Field(default_factory=list)
    communications: list[MemoryCommunication] = Field(default_factory=list)
    meta: RecallMeta | None = None

    @classmethod
    def parse_lenient(cls, payload: dict[str, Any]) -> tuple[MemoryRetrievalResponse, int]:
        """Parse item by item; return the response and how many malformed items were dropped."""
        dropped = 0

        def items(key: str, model: type[WireModel]) -> list[Any]:
            nonlocal dropped
            raw = payload.get(key)
            if not isinstance(raw, list):
                return []
            good = []
            for item in raw:
                try:
                    good.append(model.model_validate(item))
                except ValueError:
                    dropped += 1
            return good

        meta_raw = payload.get("meta")
        meta = RecallMeta.model_validate(meta_raw) if isinstance(meta_raw, dict) else None
        response = cls(
            observations=items("observations", ObservationInfo),
            summaries=items("summaries", SummaryInfo),
            communications=items("communications", MemoryCommunication),
            meta=meta,
        )
        return response, dropped


class ObservationCreate(OptionsModel):
    """One observation to write (``POST .../Observations``)."""

    content: str = Field(min_length=1, max_length=4096)
    source: str = Field(default="conversation-intelligence", max_length=100)
    occurred_at: datetime | None = None
    conversation_ids: list[str] | None = None


class SummaryCreate(OptionsModel):
    """One conversation summary to write (``POST .../ConversationSummaries``)."""

    content: str = Field(min_length=1, max_length=4096)
    conversation_id: str
    occurred_at: datetime | None = None
    source: str | None = Field(default="conversation-intelligence", max_length=100)
