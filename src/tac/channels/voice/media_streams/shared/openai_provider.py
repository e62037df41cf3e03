"""What the OpenAI speech-to-speech providers share: the session config and the connection."""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tac._version import __version__
from tac.channels.voice.media_streams._bridge import MediaStreamsProvider
from tac.channels.voice.media_streams._protocol import string_field
from tac.channels.voice.media_streams.base import AudioDelta, CallContext, ModelEvent, ToolCall
from tac.channels.voice.media_streams.shared.config import MediaStreamsOpenAIProviderConfig
from tac.core.logging import get_logger
from tac.models.session import ConversationSession
from tac.models.stream import StreamStartMessage
from tac.models.voice import TwiMLRequest

if TYPE_CHECKING:
    from tac.channels.voice.channel import VoiceChannel
    from tac.channels.voice.media_streams._socket import ModelSocket

__all__ = [
    "OPENAI_USER_AGENT",
    "MediaStreamsOpenAIProvider",
    "OpenAIConnection",
    "finish_session",
    "function_call",
]

OPENAI_USER_AGENT = f"opentac/Python {__version__}"

logger = get_logger("channels.voice.media_streams")
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _audio_delta(raw: str) -> AudioDelta | None:
    """An audio delta read by position (no ``json.loads``); ``None``: parse it fully."""
    item = string_field(raw, "item_id")
    delta = string_field(raw, "delta")
    if item is None or delta is None:
        return None
    return AudioDelta(item, delta)


def finish_session(session: dict[str, Any], context: CallContext) -> dict[str, Any]:
    """``session`` with the call's instructions (memory included) and tools declared."""
    if context.instructions is not None:
        session["instructions"] = context.instructions
    if context.tools:
        tools = list(session.get("tools") or [])
        named = {t.get("name") for t in tools if isinstance(t, dict)}
        tools.extend(t.to_realtime_format() for t in context.tools if t.name not in named)
        session["tools"] = tools
    return session


def function_call(item: Any) -> ToolCall | None:
    """The tool call in a finished output item (``type: function_call``), if it is one."""
    if (
        isinstance(item, dict)
        and item.get("type") == "function_call"
        and item.get("status", "completed") == "completed"
    ):
        return ToolCall(
            str(item.get("call_id") or ""),
            str(item.get("name") or ""),
            str(item.get("arguments") or "{}"),
        )
    return None


class OpenAIConnection(ABC):
    """A model session over one WebSocket; subclasses map the wire events."""

    audio_delta_type = ""
    """The wire type of the model's audio deltas, read without a full JSON parse."""

    def __init__(self, websocket: ModelSocket, audio_append_type: str) -> None:
        self.websocket = websocket
        self._append_prefix = '{"type":"' + audio_append_type + '","audio":"'
        self._closed = False

    async def send(self, event: dict[str, Any]) -> None:
        await self.websocket.send(_dumps(event))

    async def send_audio(self, payload: str) -> None:
        socket = self.websocket
        socket.send_now(self._append_prefix + payload + '"}')
        if socket.paused:
            await socket.drain()

    async def events(self) -> AsyncIterator[ModelEvent]:
        loads = json.loads
        translate = self.translate
        socket = self.websocket
        inbox = socket.inbox
        delta_prefix = '{"type":"' + self.audio_delta_type + '"' if self.audio_delta_type else None
        while inbox or await socket.wait():
            raw = inbox.popleft()
            if delta_prefix is not None and raw.startswith(delta_prefix):
                delta = _audio_delta(raw)
                if delta is not None:  # the hot path: one per 20-100 ms of audio per call
                    yield delta
                    continue
            try:
                data = loads(raw)
            except ValueError:
                logger.warning("the model sent a frame that is not JSON")
                continue
            if not isinstance(data, dict):
                continue
            for event in translate(data):
                yield event

    @abstractmethod
    def translate(self, data: dict[str, Any]) -> list[ModelEvent]:
        """The bridge's events for one wire event."""

    async def cancel_response(self) -> None:
        return None

    async def truncate(self, item_id: str, audio_end_ms: int) -> None:
        return None

    @abstractmethod
    async def send_tool_result(self, call_id: str, output: str) -> None:
        """Give the model a tool call's output (and let it answer)."""

    async def update_instructions(self, instructions: str) -> None:
        return None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.websocket.close()


class MediaStreamsOpenAIProvider(MediaStreamsProvider):
    """The session config and model endpoint of OpenAI speech-to-speech providers."""

    config: MediaStreamsOpenAIProviderConfig

    def __init__(self, channel: VoiceChannel, config: MediaStreamsOpenAIProviderConfig) -> None:
        super().__init__(channel, config)

    async def _inbound_session_config(self, request: TwiMLRequest) -> dict[str, Any] | None:
        hook = self.config.on_inbound_call_session_config
        if hook is None:
            return None
        found = await hook(request)
        if found is not None and not isinstance(found, dict):
            raise TypeError(
                f"on_inbound_call_session_config must return a dict or None, got "
                f"{type(found).__name__}"
            )
        return found

    def _session_config(self, per_call: dict[str, Any]) -> dict[str, Any]:
        config = dict(self.config.default_session_config or {})
        config.update(per_call)
        if not config.get("model"):
            raise ValueError("the session config needs a 'model' (default_session_config)")
        return config

    async def _call_context(
        self, start: StreamStartMessage, session: ConversationSession, per_call: dict[str, Any]
    ) -> CallContext:
        config = self._session_config(per_call)
        instructions = config.get("instructions")
        return CallContext(
            start=start,
            session=session,
            session_config=config,
            instructions=instructions if isinstance(instructions, str) else None,
        )

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.openai_api_key}",
            "User-Agent": OPENAI_USER_AGENT,
        }

    async def _open_socket(self, url: str) -> ModelSocket:
        try:
            from tac.channels.voice.media_streams._socket import open_model_socket
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                "Media Streams providers need websockets: pip install 'opentac[openai-realtime]'"
            ) from exc
        return await open_model_socket(url, self._headers(), open_timeout=10)
