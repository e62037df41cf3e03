"""What a callback receives as ``memory``: :class:`TACMemoryResponse`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from tac.models.conversation import Communication
from tac.models.memory import MemoryRetrievalResponse, ObservationInfo, SummaryInfo
from tac.models.session import AuthorInfo

__all__ = [
    "TACCommunication",
    "TACCommunicationAuthor",
    "TACCommunicationContent",
    "TACMemoryResponse",
]


class TACCommunicationAuthor(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    address: str | None = None
    channel: str | None = None
    participant_id: str | None = None
    name: str | None = None
    type: str | None = None
    """``CUSTOMER``, ``AI_AGENT``, ... (known from Memory, or inferred from the session)."""
    profile_id: str | None = None


class TACCommunicationContent(BaseModel):
    text: str | None = None


class TACCommunication(BaseModel):
    """One message of history, whichever API it came from."""

    id: str
    author: TACCommunicationAuthor
    content: TACCommunicationContent
    channel_id: str | None = None
    created_at: datetime | None = None

    @property
    def is_from_customer(self) -> bool:
        return (self.author.type or "").upper() == "CUSTOMER"


class TACMemoryResponse:
    """Observations, summaries and recent messages for one conversation.

    Built from a Memory Recall response, or from Conversation Orchestrator communications when
    Memory is not configured or unavailable (then observations and summaries are empty).
    Always truthy, even when empty, so ``if memory:`` distinguishes "memory off" (``None``)
    from "nothing remembered yet".
    """

    __slots__ = ("_communications", "_customer", "_data", "_source")

    def __init__(
        self,
        data: MemoryRetrievalResponse | Sequence[Communication] | None = None,
        *,
        customer: AuthorInfo | None = None,
    ) -> None:
        self._data: MemoryRetrievalResponse | list[Communication]
        if data is None:
            self._data = MemoryRetrievalResponse()
            self._source = "empty"
        elif isinstance(data, MemoryRetrievalResponse):
            self._data = data
            self._source = "memory"
        else:
            self._data = list(data)
            self._source = "orchestrator"
        self._customer = customer
        self._communications = _unify(self._data, customer)

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return (
            f"TACMemoryResponse(source={self._source!r}, observations={len(self.observations)}, "
            f"summaries={len(self.summaries)}, communications={len(self._communications)})"
        )

    @classmethod
    def empty(cls) -> TACMemoryResponse:
        """A response with nothing in it."""
        return cls(None)

    @property
    def source(self) -> str:
        """Where this came from: ``"memory"``, ``"orchestrator"`` or ``"empty"``."""
        return self._source

    @property
    def observations(self) -> list[ObservationInfo]:
        if isinstance(self._data, MemoryRetrievalResponse):
            return self._data.observations
        return []

    @property
    def summaries(self) -> list[SummaryInfo]:
        if isinstance(self._data, MemoryRetrievalResponse):
            return self._data.summaries
        return []

    @property
    def communications(self) -> list[TACCommunication]:
        return self._communications

    @property
    def has_memory_features(self) -> bool:
        """True when this came from Conversation Memory (observations/summaries available)."""
        return self._source == "memory"

    @property
    def raw_data(self) -> MemoryRetrievalResponse | list[Communication]:
        return self._data

    def to_cache(self) -> dict[str, Any]:
        """A JSON-compatible form for a session store (see :meth:`from_cache`)."""
        if isinstance(self._data, MemoryRetrievalResponse):
            data: Any = self._data.model_dump(mode="json", by_alias=True, exclude_none=True)
        else:
            data = [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in self._data]
        return {"source": self._source, "data": data, "customer": self._customer_json()}

    @classmethod
    def from_cache(cls, cached: dict[str, Any]) -> TACMemoryResponse:
        customer_raw = cached.get("customer")
        customer = AuthorInfo.model_validate(customer_raw) if customer_raw else None
        source = cached.get("source")
        if source == "orchestrator":
            comms = [Communication.model_validate(c) for c in cached.get("data") or []]
            return cls(comms, customer=customer)
        if source == "memory":
            return cls(MemoryRetrievalResponse.model_validate(cached.get("data") or {}))
        return cls.empty()

    def _customer_json(self) -> dict[str, Any] | None:
        return None if self._customer is None else self._customer.model_dump()

    def is_empty(self) -> bool:
        return not (self.observations or self.summaries or self._communications)

    def build_memory_prompts(self) -> list[str]:
        """Render each non-empty part as a markdown section for a prompt."""
        sections: list[str] = []
        if self.observations:
            lines = "\n".join(f"- {o.content}" for o in self.observations)
            sections.append(f"## Key Observations\n{lines}")
        if self.summaries:
            lines = "\n".join(f"- {s.content}" for s in self.summaries)
            sections.append(f"## Past Conversation Summaries\n{lines}")
        if self._communications:
            lines = "\n".join(
                f"{'User' if c.is_from_customer else 'Assistant'}: {c.content.text or ''}"
                for c in self._communications
            )
            sections.append(f"## Recent Message History\n{lines}")
        return sections


def _unify(
    data: MemoryRetrievalResponse | list[Communication], customer: AuthorInfo | None
) -> list[TACCommunication]:
    if isinstance(data, MemoryRetrievalResponse):
        return [
            TACCommunication(
                id=c.id,
                author=TACCommunicationAuthor(
                    address=c.author.address,
                    channel=c.author.channel,
                    participant_id=c.author.id,
                    name=c.author.name,
                    type=c.author.type,
                    profile_id=c.author.profile_id,
                ),
                content=TACCommunicationContent(text=c.content.text),
                channel_id=c.channel_id,
                created_at=c.created_at,
            )
            for c in data.communications
        ]
    return [_from_orchestrator(c, customer) for c in data]


def _from_orchestrator(c: Communication, customer: AuthorInfo | None) -> TACCommunication:
    author_type: str | None = None
    if customer is not None:
        same_participant = (
            customer.participant_id is not None
            and c.author.participant_id == customer.participant_id
        )
        same_address = customer.address is not None and c.author.address == customer.address
        author_type = "CUSTOMER" if (same_participant or same_address) else "AI_AGENT"
    return TACCommunication(
        id=c.id,
        author=TACCommunicationAuthor(
            address=c.author.address,
            channel=c.author.channel,
            participant_id=c.author.participant_id,
            type=author_type,
        ),
        content=TACCommunicationContent(text=c.content.text),
        channel_id=c.channel_id,
        created_at=c.created_at or c.occurred_at,
    )
