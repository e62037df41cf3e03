"""Options and results of conversations the app starts (outbound).

Messaging: :class:`InitiateMessagingConversationOptions` (Chat:
:class:`InitiateChatConversationOptions`) and :class:`InitiateConversationResult`. Voice:
:class:`InitiateVoiceConversationOptions` (with :class:`CallOptions`) and
:class:`InitiateVoiceConversationResult`, defined in :mod:`tac.models.voice`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tac.models.session import ConversationSession
from tac.models.voice import (
    CallOptions,
    InitiateVoiceConversationOptions,
    InitiateVoiceConversationResult,
)

__all__ = [
    "CallOptions",
    "InitiateChatConversationOptions",
    "InitiateConversationResult",
    "InitiateMessagingConversationOptions",
    "InitiateVoiceConversationOptions",
    "InitiateVoiceConversationResult",
]


class InitiateMessagingConversationOptions(BaseModel):
    """Start a conversation by texting ``to`` (SMS ``+1…``, ``whatsapp:+1…``, RCS ``rcs:+1…``).

    ``metadata`` is copied onto the session (``session.metadata``) with ``direction="outbound"``.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    to: str = Field(min_length=1)
    message: str = Field(min_length=1)
    metadata: dict[str, Any] | None = None


class InitiateChatConversationOptions(InitiateMessagingConversationOptions):
    """Start a Chat conversation: ``channel_id`` names the chat the message goes to."""

    channel_id: str = Field(min_length=1)


class InitiateConversationResult(BaseModel):
    """The conversation an outbound message started (or reused) and its session."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    conversation_id: str
    session: ConversationSession
