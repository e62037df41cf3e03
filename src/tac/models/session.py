"""The conversation session passed to every callback, and the channel it runs on."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from tac.models.memory import ProfileResponse

if TYPE_CHECKING:
    from tac.models.tac import TACMemoryResponse

__all__ = ["AuthorInfo", "Channel", "ConversationSession", "PendingHandoffData"]


class Channel(str, Enum):
    """A channel, by its lowercase name.

    ``==`` against a plain string ignores case (``Channel.SMS == "SMS"``); the member hashes
    and serialises as its lowercase value. Twilio's payloads use the uppercase form
    (:attr:`wire`).
    """

    VOICE = "voice"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    RCS = "rcs"
    CHAT = "chat"

    @classmethod
    def _missing_(cls, value: object) -> Channel | None:
        if isinstance(value, str):
            lowered = value.lower()
            for member in cls:
                if member.value == lowered:
                    return member
        return None

    @property
    def wire(self) -> str:
        """The uppercase name Twilio uses on the wire (``"SMS"``)."""
        return self.value.upper()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.value == other.lower()
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return self.value

    def __format__(self, format_spec: str) -> str:
        return format(self.value, format_spec)


class AuthorInfo(BaseModel):
    """Who a participant is: their address on the channel and their participant id."""

    model_config = ConfigDict(populate_by_name=True)

    address: str | None = None
    participant_id: str | None = None


class PendingHandoffData(BaseModel):
    """A handoff waiting to be sent (voice: as ``end`` + ``handoffData`` after the reply)."""

    model_config = ConfigDict(populate_by_name=True)

    handoff_data: str
    """The JSON string ConversationRelay forwards verbatim as ``HandoffData``."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _inert(what: str) -> None:
    from tac._compat.aliases import warn_inert

    warn_inert(what, "memory_mode='once' caches memory in the session store, per conversation")


class ConversationSession(BaseModel):
    """Everything known about one conversation, passed to every callback.

    Sessions live in the :class:`~tac.state.SessionStore`; they are plain data and survive a
    round trip through JSON (a shared store keeps them as JSON).
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    conversation_id: str
    channel: Channel
    call_sid: str | None = None
    profile_id: str | None = None
    started_at: datetime = Field(default_factory=_utcnow)
    profile: ProfileResponse | None = None
    author_info: AuthorInfo | None = None
    ai_agent_info: AuthorInfo | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    custom_parameters: dict[str, str] = Field(default_factory=dict)
    pending_handoff_data: PendingHandoffData | None = None

    _cached_memory: TACMemoryResponse | None = PrivateAttr(default=None)
    _cache_lock: asyncio.Lock | None = PrivateAttr(default=None)

    @field_validator("channel", mode="before")
    @classmethod
    def _channel_any_case(cls, value: Any) -> Any:
        return Channel(value) if isinstance(value, str) else value

    @property
    def cached_memory(self) -> TACMemoryResponse | None:
        """The reference's ``once`` cache; inert here (the cache lives in the session store)."""
        _inert("ConversationSession.cached_memory")
        return self._cached_memory

    @cached_memory.setter
    def cached_memory(self, value: TACMemoryResponse | None) -> None:
        _inert("ConversationSession.cached_memory")
        self._cached_memory = value

    @property
    def cache_lock(self) -> asyncio.Lock:
        """The reference's lock around :attr:`cached_memory`; inert here."""
        _inert("ConversationSession.cache_lock")
        if self._cache_lock is None:
            self._cache_lock = asyncio.Lock()
        return self._cache_lock

    def build_profile_prompt(self, trait_groups: list[str] | None = None) -> str | None:
        """Describe the profile's traits as prompt text, or ``None`` when there are none."""
        if self.profile is None or not self.profile.traits:
            return None
        lines = []
        for group, traits in self.profile.traits.items():
            if trait_groups is not None and group not in trait_groups:
                continue
            if not traits:
                continue
            rendered = ", ".join(f"{key}: {value}" for key, value in traits.items())
            lines.append(f"- {group}: {rendered}")
        if not lines:
            return None
        return "## Customer Profile\nInformation about this customer:\n" + "\n".join(lines)
