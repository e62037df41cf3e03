"""OpenAI GPT-Live behind Media Streams: ``session.start``, ``session.input_audio.append``,
transcript deltas coalesced into turns, delegated function calls. Barge-in is the server's;
GPT-Live has no truncation, so what the caller did not hear of an interrupted answer is told
to the model with ``session.instructions.append``."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tac.channels.voice.media_streams._protocol import audio_ms
from tac.channels.voice.media_streams.base import (
    AudioDelta,
    CallContext,
    ModelError,
    ModelEvent,
    SessionStarted,
    SpeechStarted,
    SpeechToSpeechConnection,
    Transcript,
)
from tac.channels.voice.media_streams.shared.config import MediaStreamsOpenAIProviderConfig
from tac.channels.voice.media_streams.shared.openai_provider import (
    MediaStreamsOpenAIProvider,
    OpenAIConnection,
    finish_session,
    function_call,
)

if TYPE_CHECKING:
    from tac.channels.voice.channel import VoiceChannel
    from tac.core.config import TACConfig

__all__ = [
    "GPT_LIVE_SESSION_ID_METADATA_KEY",
    "TWILIO_AUDIO_FORMAT_FOR_GPT_LIVE",
    "GPTLiveProvider",
    "GPTLiveProviderConfig",
]

TWILIO_AUDIO_FORMAT_FOR_GPT_LIVE: dict[str, Any] = {"type": "audio/pcmu", "rate": 8000}
GPT_LIVE_SESSION_ID_METADATA_KEY = "gpt_live_session_id"
_CLOSE_WAIT_SECONDS = 5.0
_HEARD_TEXT_CHARS = 600  # the instruction stays far below GPT-Live's 500 tokens


class GPTLiveProviderConfig(MediaStreamsOpenAIProviderConfig):
    """GPT-Live settings; ``welcome_instruction`` makes the model speak first."""

    welcome_instruction: str | None = None

    def create_provider(
        self, channel: VoiceChannel, tac_config: TACConfig | None = None
    ) -> GPTLiveProvider:
        return GPTLiveProvider(channel, self)


def live_session(context: CallContext) -> dict[str, Any]:
    """The ``session`` of ``session.start``: μ-law 8 kHz, instructions and tools."""
    session = copy.deepcopy(context.session_config)
    audio = session.setdefault("audio", {})
    found = audio.setdefault("format", dict(TWILIO_AUDIO_FORMAT_FOR_GPT_LIVE))
    if found != TWILIO_AUDIO_FORMAT_FOR_GPT_LIVE:
        raise ValueError(
            f"session audio.format must be {TWILIO_AUDIO_FORMAT_FOR_GPT_LIVE} (Twilio's μ-law), "
            f"got {found!r}"
        )
    return finish_session(session, context)


class _LiveConnection(OpenAIConnection):
    audio_delta_type = "session.output_audio.delta"

    def __init__(self, websocket: Any, welcome_instruction: str | None) -> None:
        super().__init__(websocket, "session.input_audio.append")
        self._welcome = welcome_instruction
        self._role: str | None = None
        self._text: list[str] = []
        self._closed_by_model = asyncio.Event()
        self._welcome_task: asyncio.Future[None] | None = None
        self._item = ""  # the answer being spoken, its audio so far and, once done, its text
        self._item_ms = 0
        self._item_text = ""

    def _flush(self, role: str | None) -> list[ModelEvent]:
        """Transcript deltas arrive in pieces: a turn is done when the other side speaks."""
        events: list[ModelEvent] = []
        if self._role is not None and self._role != role and self._text:
            text = "".join(self._text)
            events.append(Transcript(self._role, text))  # type: ignore[arg-type]
            if self._role == "assistant":
                self._item_text = text
            self._text = []
        self._role = role
        return events

    async def events(self) -> AsyncIterator[ModelEvent]:
        async for event in super().events():
            if type(event) is AudioDelta:
                if event.item_id != self._item:
                    self._item, self._item_ms, self._item_text = event.item_id, 0, ""
                self._item_ms += audio_ms(event.payload)
            yield event

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        """No ``conversation.item.truncate`` here: tell the model what the caller heard."""
        spoken_ms = self._item_ms if item_id == self._item else 0
        text = self._item_text if item_id == self._item else ""
        await self.send(
            {
                "type": "session.instructions.append",
                "delegation_id": None,
                "content": heard_note(audio_end_ms, spoken_ms, text),
            }
        )

    def translate(self, data: dict[str, Any]) -> list[ModelEvent]:
        kind = data.get("type")
        if kind == "session.output_audio.delta":
            return [AudioDelta(str(data.get("item_id") or ""), str(data.get("delta") or ""))]
        if kind in ("session.input_transcript.delta", "session.output_transcript.delta"):
            role = "user" if kind == "session.input_transcript.delta" else "assistant"
            caller_began = role == "user" and self._role != "user"
            events = self._flush(role)
            if caller_began:
                # GPT-Live stops talking by itself when the caller speaks; what Twilio still
                # has buffered must go too
                events.append(SpeechStarted())
            self._text.append(str(data.get("delta") or ""))
            return events
        if kind == "session.started":
            session = data.get("session")
            events = []
            if isinstance(session, dict) and session.get("id"):
                events.append(SessionStarted(str(session["id"])))
            if self._welcome:
                welcome = self._welcome
                self._welcome = None
                self._welcome_task = asyncio.ensure_future(self._send_welcome(welcome))
            return events
        if kind == "response.event":
            inner = data.get("event")
            if isinstance(inner, dict) and inner.get("type") == "response.output_item.done":
                call = function_call(inner.get("item"))
                if call is not None:
                    return [call]
            return []
        if kind == "session.closed":
            self._closed_by_model.set()
            return self._flush(None)
        if kind == "error":
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            assert isinstance(error, dict)
            return [ModelError(str(error.get("message") or "error"), error.get("code"))]
        return []

    async def _send_welcome(self, text: str) -> None:
        with contextlib.suppress(Exception):
            await self.send(
                {"type": "session.commentary.append", "delegation_id": None, "content": text}
            )

    async def send_tool_result(self, call_id: str, output: str) -> None:
        await self.send(
            {
                "type": "response.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )
        await self.send({"type": "response.create"})

    async def close(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(Exception):
            await self.send({"type": "session.close"})
            await asyncio.wait_for(self._closed_by_model.wait(), _CLOSE_WAIT_SECONDS)
        await super().close()


def heard_note(heard_ms: int, spoken_ms: int, text: str) -> str:
    """What the caller heard of an interrupted answer (``spoken_ms`` long, transcript ``text``),
    for the model: its share of the words, as heard audio is of spoken audio."""
    if heard_ms <= 0:
        return (
            "The caller interrupted you before hearing any of your last answer: do not assume "
            "they heard it."
        )
    note = f"The caller interrupted you after hearing only the first {heard_ms / 1000:.1f} s"
    if spoken_ms > heard_ms:
        note += f" of the {spoken_ms / 1000:.1f} s of your last answer"
        words = text.split()
        count = len(words) * heard_ms // spoken_ms
        if count:
            heard = " ".join(words[:count])[-_HEARD_TEXT_CHARS:]
            note += f', about: "{heard}"'
    else:
        note += " of your last answer"
    return note + ". They did not hear the rest: do not assume they did."


class GPTLiveProvider(MediaStreamsOpenAIProvider):
    """Bridges each call to an OpenAI GPT-Live session (``wss://…/v1/live/sessions``)."""

    provider_id = "openai_gpt_live"
    channel_name = "VOICE_MEDIA_STREAM_OPENAI_GPT_LIVE"
    config: GPTLiveProviderConfig

    async def _connect(self, context: CallContext) -> SpeechToSpeechConnection:
        session = live_session(context)
        url = f"{self.config.model_base_url()}/live/sessions"
        connection = _LiveConnection(await self._open_socket(url), self.config.welcome_instruction)
        try:
            await connection.send({"type": "session.start", "session": session})
        except BaseException:
            await connection.close()
            raise
        return connection
