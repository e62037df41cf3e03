"""Enterprise Knowledge v2 wire models (``knowledge.twilio.com``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from tac.models._base import WireModel

__all__ = [
    "Knowledge",
    "KnowledgeBase",
    "KnowledgeChunkResult",
    "KnowledgeSearchRequest",
    "KnowledgeSearchResponse",
]


class KnowledgeBase(WireModel):
    """A knowledge base (``GET /v2/ControlPlane/KnowledgeBases/{id}``), e.g. for tool text."""

    id: str
    display_name: str | None = None
    description: str | None = None
    status: str | None = None
    """``QUEUED``, ``PROVISIONING``, ``ACTIVE``, ``FAILED`` or ``DELETING``."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int | None = None


class Knowledge(WireModel):
    """One knowledge source of a base (text, web page or file) and its processing status."""

    id: str
    name: str | None = None
    description: str | None = None
    status: str | None = None
    """``SCHEDULED``, ``QUEUED``, ``PROCESSING``, ``COMPLETED`` or ``FAILED``."""
    type: str | None = None
    source: dict[str, Any] | None = None
    knowledge_base_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int | None = None


class KnowledgeChunkResult(WireModel):
    """One matching chunk of a search."""

    content: str
    knowledge_id: str | None = None
    created_at: datetime | None = None
    chunk_index: int | None = None
    document_title: str | None = None
    document_url: str | None = None
    document_number: int | None = None
    score: float | None = None


class KnowledgeSearchRequest(WireModel):
    """The body of ``POST /v2/KnowledgeBases/{id}/Search``."""

    query: str = Field(min_length=1, max_length=2048)
    top: int = Field(default=5, ge=1, le=20)
    knowledge_ids: list[str] | None = Field(default=None, max_length=100)


class KnowledgeSearchResponse(WireModel):
    chunks: list[KnowledgeChunkResult] = Field(default_factory=list)

    @field_validator("chunks", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value
