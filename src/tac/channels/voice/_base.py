"""What every voice provider shares: its configuration base and its interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from tac.models.memory import MemoryMode
from tac.models.voice import (
    InitiateVoiceConversationOptions,
    InitiateVoiceConversationResult,
    TwiMLRequest,
    VoiceTwiMLOptions,
)

if TYPE_CHECKING:
    from fastapi import WebSocket

    from tac.channels.voice.channel import VoiceChannel
    from tac.core.config import TACConfig
    from tac.models.session import ConversationSession

__all__ = ["VoiceProvider", "VoiceProviderConfig"]


class VoiceProviderConfig(BaseModel):
    """Settings every voice provider has; :meth:`create_provider` builds the provider."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    memory_mode: MemoryMode = "never"

    def create_provider(self, channel: VoiceChannel, tac_config: TACConfig) -> VoiceProvider:
        """The provider this configuration describes, serving ``channel`` (the reference's
        signature: ``tac_config`` is the app's configuration)."""
        raise TypeError(f"{type(self).__name__} does not describe a voice provider")


class VoiceProvider(ABC):
    """How calls reach the agent (ConversationRelay; later Media Streams)."""

    provider_id = "custom"
    channel_name = "VOICE"

    def __init__(self, channel: VoiceChannel) -> None:
        self.channel = channel
        self.calls: dict[str, Any] = {}
        """Live calls of this process, by conversation id and by CallSid (same object); each
        call has a ``session`` (``None`` before its setup) and a ``websocket``."""

    @abstractmethod
    async def handle_incoming_call(
        self,
        twiml_request: TwiMLRequest | None = None,
        *,
        host_twiml_options: VoiceTwiMLOptions | None = None,
    ) -> str:
        """The TwiML answering an incoming call."""

    @abstractmethod
    async def handle_websocket(self, websocket: WebSocket) -> None:
        """Serve one call's WebSocket until it closes."""

    @abstractmethod
    async def send_response(self, conversation_id: str, response: Any) -> None:
        """Speak a reply in a live call."""

    @abstractmethod
    async def initiate_outbound_conversation(
        self, options: InitiateVoiceConversationOptions
    ) -> InitiateVoiceConversationResult:
        """Place a call connected to this provider."""

    def call_kwargs(self, *call_options: Any) -> dict[str, Any]:
        """Calls API arguments for an outbound call: ``call_options`` merged (later ones win),
        plus the status, AMD and recording callbacks of the events the channel handles."""
        kwargs: dict[str, Any] = {}
        for options in call_options:
            if options is not None:
                kwargs.update(options.to_call_kwargs())
        config = self.channel.tac.config
        if self.channel.handles_call_event("status"):
            kwargs.setdefault("status_callback", config.call_event_url("status"))
        if self.channel.handles_call_event("amd") and kwargs.get("machine_detection"):
            kwargs.setdefault("async_amd_status_callback", config.call_event_url("amd"))
        if self.channel.handles_call_event("recording") and kwargs.get("record"):
            kwargs.setdefault("recording_status_callback", config.call_event_url("recording"))
        return {key: value for key, value in kwargs.items() if value is not None}

    async def speak(self, conversation_id: str, response: Any) -> None:
        """Speak a reply wherever the call is live. Default: in this process only."""
        await self.send_response(conversation_id, response)

    def get_websocket(self, conversation_id: str) -> WebSocket | None:
        """The live call's WebSocket in this process, if any."""
        call = self.calls.get(conversation_id)
        return None if call is None else call.websocket

    def session_for_call(self, call_sid: str) -> ConversationSession | None:
        """The session of a call live in this process (``None`` before its setup)."""
        call = self.calls.get(call_sid)
        return None if call is None else call.session

    async def live_anywhere(self, call_id: str) -> bool:
        """Whether the call is live on any instance. Default: in this process."""
        return call_id in self.calls

    async def start(self) -> None:
        """Start background work when the server starts. Default: nothing."""
        return None

    async def aclose(self) -> None:
        """Release what the provider holds. Default: nothing."""
        return None
