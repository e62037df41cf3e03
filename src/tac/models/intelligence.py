"""Conversation Intelligence v3 wire models: the rule-execution webhook and operator results.

A rule whose action is a webhook POSTs an :class:`OperatorResultEvent` (JSON) when its
operators run. Each :class:`OperatorResult` carries its output in ``result``, shaped by
``outputFormat``: ``TEXT`` → :class:`TextGenerationResult`, ``JSON`` → :class:`JSONResult` (or
any object the operator's schema describes), ``CLASSIFICATION`` → :class:`ClassificationResult`,
``EXTRACTION`` → :class:`ExtractionResult`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from tac.models._base import WireModel

__all__ = [
    "ClassificationResult",
    "CommunicationsRange",
    "ExecutionDetails",
    "ExtractionEntity",
    "ExtractionResult",
    "IntelligenceConfiguration",
    "IntelligenceParticipant",
    "JSONResult",
    "Operator",
    "OperatorResult",
    "OperatorResultEvent",
    "ResolvedContext",
    "ResolvedMemoryContext",
    "TextGenerationResult",
    "TriggerDetails",
]


class IntelligenceConfiguration(WireModel):
    """The intelligence configuration (and rule) that produced the results."""

    id: str = Field(min_length=1)
    friendly_name: str | None = None
    version: int | None = None
    rule_id: str | None = None


class Operator(WireModel):
    """The operator that ran (``friendlyName`` is sent by some payload versions)."""

    id: str = Field(min_length=1)
    friendly_name: str | None = None
    version: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("parameters", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class TriggerDetails(WireModel):
    """What made the rule run: ``on`` is ``COMMUNICATION``, ``CONVERSATION_INACTIVE``, ..."""

    on: str | None = None
    timestamp: datetime | None = None


class CommunicationsRange(WireModel):
    """The first and last communication the operator read."""

    first: str | None = None
    last: str | None = None


class IntelligenceParticipant(WireModel):
    """A participant of the analysed conversation (``type``: ``CUSTOMER``, ``AI_AGENT``, ...)."""

    id: str | None = None
    profile_id: str | None = None
    type: str | None = None


class ResolvedMemoryContext(WireModel):
    """The Memory profile and store the rule resolved for the conversation."""

    profile_id: str | None = None
    memory_store_id: str | None = None


class ResolvedContext(WireModel):
    memory: ResolvedMemoryContext | None = None


class ExecutionDetails(WireModel):
    """How and on what the operator ran."""

    trigger: TriggerDetails | None = None
    communications: CommunicationsRange | None = None
    channels: list[str] = Field(default_factory=list)
    participants: list[IntelligenceParticipant] = Field(default_factory=list)
    resolved_context: ResolvedContext | None = None
    context: dict[str, Any] | None = None

    @field_validator("channels", "participants", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class TextGenerationResult(WireModel):
    """``TEXT`` output (older payloads name the field ``result``)."""

    text: str | None = None
    result: str | None = None


class JSONResult(WireModel):
    """``JSON`` output in its older, wrapped form: the object as a JSON string."""

    payload: str | dict[str, Any] | None = None


class ClassificationResult(WireModel):
    """``CLASSIFICATION`` output."""

    label: str


class ExtractionEntity(WireModel):
    """One extracted entity (offsets are sent by older payloads)."""

    text: str
    label: str
    communication_id: str | None = None
    begin_offset: int | None = None
    end_offset: int | None = None


class ExtractionResult(WireModel):
    """``EXTRACTION`` output."""

    entities: list[ExtractionEntity] = Field(default_factory=list)


class OperatorResult(WireModel):
    """One operator's result; ``result`` is kept as sent (see the module docstring)."""

    id: str = Field(min_length=1)
    account_id: str | None = None
    output_format: str
    intelligence_configuration: IntelligenceConfiguration | None = None
    conversation_id: str | None = None
    operator: Operator
    date_created: datetime | None = None
    reference_ids: list[str] = Field(default_factory=list)
    execution_details: ExecutionDetails | None = None
    metadata: dict[str, Any] | None = None
    result: dict[str, Any] | str | None = None

    @field_validator("output_format", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("reference_ids", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class OperatorResultEvent(WireModel):
    """The body of a rule-execution webhook."""

    account_id: str | None = None
    conversation_id: str = Field(min_length=1)
    memory_store_id: str | None = None
    intelligence_configuration: IntelligenceConfiguration
    operator_results: list[OperatorResult]
