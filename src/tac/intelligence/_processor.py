"""Turn Conversation Intelligence operator results into Memory summaries and observations."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ValidationError

from tac._errors import TACError
from tac.core.config import ConversationIntelligenceConfig
from tac.core.logging import get_logger
from tac.models._base import first_error
from tac.models.intelligence import OperatorResult, OperatorResultEvent
from tac.models.memory import ObservationCreate, SummaryCreate
from tac.state.base import ClaimResult, SessionStore

__all__ = [
    "InvalidOperatorEventError",
    "MemoryWriter",
    "OperatorProcessingResult",
    "OperatorResultProcessor",
]

logger = get_logger("intelligence")

SOURCE = "conversation-intelligence"
_MAX_CONTENT = 4096
_JSON_WRAPPER = "com.twilio.cai.intelligence.JSONResult"
_TEXT_KEYS = ("summary", "observation", "content", "text")


class InvalidOperatorEventError(TACError, ValueError):
    """The webhook body is not a rule-execution event; the message names the field."""


class MemoryWriter(Protocol):
    """The part of :class:`tac.context.MemoryClient` the processor uses."""

    async def get_store_id(self) -> str: ...

    async def create_conversation_summaries(
        self, profile_id: str, summaries: Sequence[SummaryCreate], /
    ) -> dict[str, Any]: ...

    async def create_observations(
        self, profile_id: str, observations: Sequence[ObservationCreate], /
    ) -> None: ...


class OperatorProcessingResult(BaseModel):
    """What one webhook delivery wrote to Memory."""

    success: bool
    """False when a Memory write failed (``error`` says which)."""
    event_type: Literal["summary", "observation", "mixed"] | None = None
    """What was written: summaries, observations, both, or nothing."""
    skipped: bool = False
    """True when nothing was written and nothing failed (``skip_reason`` says why)."""
    skip_reason: str | None = None
    error: str | None = None
    created_count: int = 0
    """Summaries plus observations written (per profile)."""
    summaries_created: int = 0
    observations_created: int = 0


class OperatorResultProcessor:
    """Writes the results of a Conversation Intelligence rule to Conversation Memory.

    Only events of ``config.configuration_id`` are processed. The results of
    ``config.summary_operator_sid`` are conversation summaries; without that setting, a result
    shaped like ``{"summaries": [...]}`` or ``{"summary": ...}`` is. Everything else that
    carries content becomes observations: ``{"observations": [...]}``, a ``TEXT`` result, a
    ``CLASSIFICATION`` (``"<operator>: <label>"``) or an ``EXTRACTION`` (``"<label>: <text>"``
    per entity). Both are written for every customer profile of the conversation, with
    ``source="conversation-intelligence"`` and ``occurredAt`` = the result's ``dateCreated``.

    With a ``session_store``, each operator result is claimed by its id, so a redelivered
    webhook writes nothing twice; a failed write gives the claim back for the retry.
    """

    def __init__(
        self,
        conversation_memory_client: MemoryWriter,
        config: ConversationIntelligenceConfig,
        *,
        session_store: SessionStore | None = None,
    ) -> None:
        if conversation_memory_client is None:
            raise ValueError(
                "Conversation Intelligence needs Conversation Memory: set "
                "TWILIO_CONVERSATION_CONFIGURATION_ID to a configuration with a memory store"
            )
        self.conversation_memory_client = conversation_memory_client
        self.config = config
        self.session_store = session_store

    @staticmethod
    def parse_event(payload: Any) -> OperatorResultEvent:
        """Validate a webhook body; :class:`InvalidOperatorEventError` names what is wrong."""
        if not isinstance(payload, Mapping):
            raise InvalidOperatorEventError("the body must be a JSON object")
        try:
            return OperatorResultEvent.model_validate(dict(payload))
        except ValidationError as exc:
            where, message = first_error(exc, "body")
            raise InvalidOperatorEventError(f"{where}: {message}") from None

    async def process_event(
        self, payload: Mapping[str, Any] | OperatorResultEvent
    ) -> OperatorProcessingResult:
        """Process one webhook body (raises :class:`InvalidOperatorEventError` if malformed)."""
        event = payload if isinstance(payload, OperatorResultEvent) else self.parse_event(payload)
        configuration = event.intelligence_configuration.id
        if configuration != self.config.configuration_id:
            return _skip(f"configuration {configuration} is not {self.config.configuration_id}")
        if not event.operator_results:
            return _skip("no operator results")
        store_id = await self.conversation_memory_client.get_store_id()
        if event.memory_store_id and event.memory_store_id != store_id:
            return _skip(f"memory store {event.memory_store_id} is not this app's ({store_id})")

        summaries = observations = 0
        reasons: list[str] = []
        errors: list[str] = []
        for result in event.operator_results:
            try:
                written = await self._process_result(event, result, store_id, reasons)
            except Exception as exc:
                logger.warning(
                    "writing operator result %s to Memory failed: %s",
                    result.id,
                    exc,
                    conversation_id=event.conversation_id,
                )
                errors.append(f"{result.id}: {type(exc).__name__}: {exc}")
                continue
            summaries += written[0]
            observations += written[1]

        kind: Literal["summary", "observation", "mixed"] | None = None
        if summaries and observations:
            kind = "mixed"
        elif summaries:
            kind = "summary"
        elif observations:
            kind = "observation"
        created = summaries + observations
        return OperatorProcessingResult(
            success=not errors,
            event_type=kind,
            skipped=not created and not errors,
            skip_reason="; ".join(reasons) if not created and not errors and reasons else None,
            error="; ".join(errors) or None,
            created_count=created,
            summaries_created=summaries,
            observations_created=observations,
        )

    async def _process_result(
        self,
        event: OperatorResultEvent,
        result: OperatorResult,
        store_id: str,
        reasons: list[str],
    ) -> tuple[int, int]:
        details = result.execution_details
        resolved = details.resolved_context.memory if details and details.resolved_context else None
        if resolved and resolved.memory_store_id and resolved.memory_store_id != store_id:
            reasons.append(f"{result.id}: memory store {resolved.memory_store_id} is not ours")
            return 0, 0
        summary_texts, observation_texts = self._contents(result)
        if not summary_texts and not observation_texts:
            reasons.append(f"{result.id}: no summary or observation in the result")
            return 0, 0
        profiles = _customer_profiles(result)
        if not profiles:
            reasons.append(f"{result.id}: no customer profile in the result")
            return 0, 0

        key = f"cintel:{result.id}"
        if self.session_store is not None:
            claim = await self.session_store.claim(key)
            if claim is not ClaimResult.CLAIMED:
                reasons.append(f"{result.id}: already processed")
                return 0, 0
        conversation_id = result.conversation_id or event.conversation_id
        occurred = _occurred_at(result)
        try:
            for profile in profiles:
                if summary_texts:
                    await self.conversation_memory_client.create_conversation_summaries(
                        profile,
                        [
                            SummaryCreate(
                                content=text,
                                conversation_id=conversation_id,
                                occurred_at=occurred,
                                source=SOURCE,
                            )
                            for text in summary_texts
                        ],
                    )
                if observation_texts:
                    await self.conversation_memory_client.create_observations(
                        profile,
                        [
                            ObservationCreate(
                                content=text,
                                source=SOURCE,
                                occurred_at=occurred,
                                conversation_ids=[conversation_id],
                            )
                            for text in observation_texts
                        ],
                    )
        except BaseException:
            if self.session_store is not None:
                await self.session_store.release(key)
            raise
        if self.session_store is not None:
            await self.session_store.complete(key)
        return len(summary_texts) * len(profiles), len(observation_texts) * len(profiles)

    def _contents(self, result: OperatorResult) -> tuple[list[str], list[str]]:
        """(summaries, observations) carried by one result."""
        value = _result_value(result)
        is_summary_operator = (
            self.config.summary_operator_sid is not None
            and result.operator.id == self.config.summary_operator_sid
        )
        kind = result.output_format
        if is_summary_operator:
            found = _texts(value, "summaries", "summary")
            if not found and isinstance(value, str):
                found = [value]
            return _clean(found), []
        summaries: list[str] = []
        if self.config.summary_operator_sid is None:
            summaries = _texts(value, "summaries", "summary")
        observations = _texts(value, "observations", "observation")
        name = result.operator.friendly_name
        if kind == "CLASSIFICATION" and isinstance(value, Mapping) and value.get("label"):
            observations.append(f"{name or 'Classification'}: {value['label']}")
        elif kind == "EXTRACTION" and isinstance(value, Mapping):
            for entity in value.get("entities") or []:
                if isinstance(entity, Mapping) and entity.get("text"):
                    label = entity.get("label") or name or "Entity"
                    observations.append(f"{label}: {entity['text']}")
        elif isinstance(value, str) and not summaries:
            observations.append(value)
        return _clean(summaries), _clean(observations)


def _skip(reason: str) -> OperatorProcessingResult:
    logger.debug("Conversation Intelligence event skipped: %s", reason)
    return OperatorProcessingResult(success=True, skipped=True, skip_reason=reason)


def _result_value(result: OperatorResult) -> Any:
    """The operator's output: a JSON value or a string, unwrapped from older encodings."""
    value: Any = result.result
    if isinstance(value, Mapping):
        wrapped = value.get(_JSON_WRAPPER)
        if isinstance(wrapped, Mapping):
            value = wrapped
        if set(value) == {"payload"} or (result.output_format == "JSON" and "payload" in value):
            value = value["payload"]
        elif result.output_format in ("TEXT", "GENERATION"):
            text = value.get("text", value.get("result"))
            value = text if isinstance(text, str) else value
    if isinstance(value, str) and result.output_format == "JSON":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _texts(value: Any, plural: str, singular: str) -> list[str]:
    """Texts under ``plural`` (a list of strings or objects) or ``singular`` (a string)."""
    if not isinstance(value, Mapping):
        return []
    found: list[str] = []
    items = value.get(plural)
    if isinstance(items, list):
        for item in items:
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, Mapping):
                for key in _TEXT_KEYS:
                    if isinstance(item.get(key), str):
                        found.append(item[key])
                        break
    single = value.get(singular)
    if isinstance(single, str):
        found.append(single)
    return found


def _clean(texts: list[str]) -> list[str]:
    cleaned = []
    for text in texts:
        text = text.strip()
        if text:
            cleaned.append(text[:_MAX_CONTENT])
    return cleaned


def _customer_profiles(result: OperatorResult) -> list[str]:
    details = result.execution_details
    profiles: list[str] = []
    if details is not None:
        for participant in details.participants:
            profile = participant.profile_id
            if (
                (participant.type or "").upper() == "CUSTOMER"
                and profile
                and profile not in profiles
            ):
                profiles.append(profile)
        memory = details.resolved_context.memory if details.resolved_context else None
        if not profiles and memory is not None and memory.profile_id:
            profiles.append(memory.profile_id)
    return profiles


def _occurred_at(result: OperatorResult) -> datetime:
    if result.date_created is not None:
        return result.date_created
    details = result.execution_details
    if details and details.trigger and details.trigger.timestamp:
        return details.trigger.timestamp
    return datetime.now(timezone.utc)
