"""OpenAI Realtime (GA) behind Media Streams: ``session.update``, ``input_audio_buffer.append``,
``response.*``, ``conversation.item.truncate`` and function calls over one WebSocket per call."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pydantic import Field

from tac.channels.voice.media_streams.base import (
    AudioDelta,
    CallContext,
    ModelError,
    ModelEvent,
    ResponseDone,
    ResponseStarted,
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
    "TWILIO_AUDIO_FORMAT_FOR_REALTIME",
    "OpenAIRealtimeProvider",
    "OpenAIRealtimeProviderConfig",
]

TWILIO_AUDIO_FORMAT_FOR_REALTIME: dict[str, Any] = {"type": "audio/pcmu"}
"""Twilio's μ-law 8 kHz as the Realtime API names it: no transcoding either way."""

_IGNORED_ERRORS = frozenset({"response_cancel_not_active"})


class OpenAIRealtimeProviderConfig(MediaStreamsOpenAIProviderConfig):
    """OpenAI Realtime settings; ``welcome_greeting_response`` (a ``response.create``
    ``response`` object) makes the model speak first."""

    welcome_greeting_response: dict[str, Any] | None = Field(default=None)

    def create_provider(
        self, channel: VoiceChannel, tac_config: TACConfig | None = None
    ) -> OpenAIRealtimeProvider:
        return OpenAIRealtimeProvider(channel, self)


def realtime_session(context: CallContext) -> dict[str, Any]:
    """The ``session`` of ``session.update``: μ-law both ways, instructions and tools."""
    session = copy.deepcopy(context.session_config)
    session.setdefault("type", "realtime")
    audio = session.setdefault("audio", {})
    for direction in ("input", "output"):
        side = audio.setdefault(direction, {})
        found = side.setdefault("format", dict(TWILIO_AUDIO_FORMAT_FOR_REALTIME))
        if not isinstance(found, dict) or found.get("type") != "audio/pcmu":
            raise ValueError(
                f"session audio.{direction}.format must be audio/pcmu (Twilio's μ-law), "
                f"got {found!r}"
            )
    return finish_session(session, context)


class _RealtimeConnection(OpenAIConnection):
    audio_delta_type = "response.output_audio.delta"

    def __init__(self, websocket: Any) -> None:
        super().__init__(websocket, "input_audio_buffer.append")
        self._response_active = False

    def translate(self, data: dict[str, Any]) -> list[ModelEvent]:
        kind = data.get("type")
        if kind in ("response.output_audio.delta", "response.audio.delta"):
            return [AudioDelta(str(data.get("item_id") or ""), str(data.get("delta") or ""))]
        if kind == "input_audio_buffer.speech_started":
            start = data.get("audio_start_ms")
            return [SpeechStarted(start if isinstance(start, int) else None)]
        if kind == "response.created":
            self._response_active = True
            return [ResponseStarted(_id(data.get("response")))]
        if kind == "response.done":
            self._response_active = False
            response = data.get("response") if isinstance(data.get("response"), dict) else {}
            assert isinstance(response, dict)
            return [ResponseDone(_id(response), response.get("status"))]
        if kind == "response.output_item.done":
            call = function_call(data.get("item"))
            return [] if call is None else [call]
        if kind in ("response.output_audio_transcript.done", "response.audio_transcript.done"):
            return [Transcript("assistant", str(data.get("transcript") or ""), data.get("item_id"))]
        if kind == "conversation.item.input_audio_transcription.completed":
            return [Transcript("user", str(data.get("transcript") or ""), data.get("item_id"))]
        if kind in ("session.created", "session.updated"):
            session = data.get("session")
            if kind == "session.created" and isinstance(session, dict) and session.get("id"):
                return [SessionStarted(str(session["id"]))]
            return []
        if kind == "error":
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            assert isinstance(error, dict)
            code = error.get("code")
            if code in _IGNORED_ERRORS:
                return []
            return [ModelError(str(error.get("message") or "error"), code)]
        return []

    async def cancel_response(self) -> None:
        if self._response_active:
            self._response_active = False
            await self.send({"type": "response.cancel"})

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        await self.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": max(0, int(audio_end_ms)),
            }
        )

    async def send_tool_result(self, call_id: str, output: str) -> None:
        await self.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )
        await self.send({"type": "response.create"})

    async def update_instructions(self, instructions: str) -> None:
        await self.send(
            {
                "type": "session.update",
                "session": {"type": "realtime", "instructions": instructions},
            }
        )


def _id(value: Any) -> str | None:
    return str(value["id"]) if isinstance(value, dict) and value.get("id") else None


class OpenAIRealtimeProvider(MediaStreamsOpenAIProvider):
    """Bridges each call to an OpenAI Realtime session (``wss://…/v1/realtime?model=…``)."""

    provider_id = "openai_realtime"
    channel_name = "VOICE_MEDIA_STREAM_OPENAI_REALTIME"
    config: OpenAIRealtimeProviderConfig

    async def _connect(self, context: CallContext) -> SpeechToSpeechConnection:
        session = realtime_session(context)
        model = quote(str(session["model"]), safe="")
        url = f"{self.config.model_base_url()}/realtime?model={model}"
        connection = _RealtimeConnection(await self._open_socket(url))
        try:
            await connection.send({"type": "session.update", "session": session})
            if self.config.welcome_greeting_response is not None:
                await connection.send(
                    {"type": "response.create", "response": self.config.welcome_greeting_response}
                )
        except BaseException:
            await connection.close()
            raise
        return connection
