"""How a speech-to-speech model plugs into the Media Streams bridge.

A model is a :class:`SpeechToSpeechModel`: ``connect(call)`` opens one
:class:`SpeechToSpeechConnection` per call. The bridge sends the caller's audio (base64 μ-law
8 kHz, exactly as Twilio sent it) and reads :data:`ModelEvent` values; everything Twilio-side
(marks, ``clear``, truncation to what was heard, tools, handoff, transcripts) is the bridge's.
OpenAI Realtime and GPT-Live are built in; Azure Voice Live or Gemini Live plug in the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from tac.models.session import ConversationSession
from tac.models.stream import StreamStartMessage
from tac.tools.base import TACTool

__all__ = [
    "AudioDelta",
    "CallContext",
    "ModelError",
    "ModelEvent",
    "ResponseDone",
    "ResponseStarted",
    "SessionStarted",
    "SpeechStarted",
    "SpeechToSpeechConnection",
    "SpeechToSpeechModel",
    "ToolCall",
    "Transcript",
]


@dataclass(slots=True)
class AudioDelta:
    """Audio for the caller: base64 μ-law 8 kHz, part of the model's item ``item_id``."""

    item_id: str
    payload: str


@dataclass(slots=True)
class SpeechStarted:
    """The caller started speaking (barge-in when the model is talking)."""

    audio_start_ms: int | None = None


@dataclass(slots=True)
class ResponseStarted:
    """The model started a response."""

    response_id: str | None = None


@dataclass(slots=True)
class ResponseDone:
    """The model finished (or cancelled) a response."""

    response_id: str | None = None
    status: str | None = None


@dataclass(slots=True)
class ToolCall:
    """The model called a function; answer with ``send_tool_result(call_id, output)``."""

    call_id: str
    name: str
    arguments: str


@dataclass(slots=True)
class Transcript:
    """A finished utterance, the caller's (``user``) or the model's (``assistant``)."""

    role: Literal["user", "assistant"]
    text: str
    item_id: str | None = None


@dataclass(slots=True)
class SessionStarted:
    """The model's session id, once known."""

    session_id: str


@dataclass(slots=True)
class ModelError:
    """An error the model reported; the call carries on."""

    message: str
    code: str | None = None


ModelEvent = (
    AudioDelta
    | SpeechStarted
    | ResponseStarted
    | ResponseDone
    | ToolCall
    | Transcript
    | SessionStarted
    | ModelError
)


@dataclass(slots=True)
class CallContext:
    """What a model needs to open a call's session.

    ``session_config`` is the provider-specific session (already merged from the defaults, the
    per-call hook and an outbound call's own); ``instructions`` has the customer's profile and
    memory appended when the channel's ``memory_mode`` asks for it; ``tools`` are every tool
    the model may call for this call.
    """

    start: StreamStartMessage
    session: ConversationSession
    session_config: dict[str, Any]
    instructions: str | None = None
    tools: list[TACTool] = field(default_factory=list)


@runtime_checkable
class SpeechToSpeechConnection(Protocol):
    """One call's live session with a speech-to-speech model."""

    async def send_audio(self, payload: str) -> None:
        """The caller's audio: base64 μ-law 8 kHz, as Twilio sent it."""

    def events(self) -> AsyncIterator[ModelEvent]:
        """The model's events until the connection closes."""

    async def cancel_response(self) -> None:
        """Stop the response in progress (no-op when none is)."""

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        """Cut the model's item to what the caller heard (``audio_end_ms`` of its audio)."""

    async def send_tool_result(self, call_id: str, output: str) -> None:
        """Answer a :class:`ToolCall` (``output`` is JSON text) and let the model go on."""

    async def update_instructions(self, instructions: str) -> None:
        """Replace the session's instructions (fresh memory mid-call)."""

    async def close(self) -> None:
        """End the session (idempotent)."""


@runtime_checkable
class SpeechToSpeechModel(Protocol):
    """Opens a model session per call."""

    async def connect(self, call: CallContext) -> SpeechToSpeechConnection:
        """Open the session for ``call``; raise to refuse the call."""
