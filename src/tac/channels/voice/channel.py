"""The voice channel: calls through ConversationRelay, with routes, controls and call events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from tac.channels.base import BaseChannel
from tac.channels.voice._base import VoiceProvider, VoiceProviderConfig
from tac.channels.voice.conversation_relay.provider import (
    ConversationRelayProvider,
    ConversationRelayProviderConfig,
)
from tac.core._callbacks import invoke
from tac.core.logging import get_logger
from tac.models._base import first_error
from tac.models.conversation import WebhookEvent
from tac.models.session import Channel, ConversationSession
from tac.models.voice import (
    AmdEvent,
    CallStatusEvent,
    ConversationRelayCallbackPayload,
    InitiateVoiceConversationOptions,
    InitiateVoiceConversationResult,
    RecordingEvent,
    TwiMLRequest,
    VoiceTwiMLOptions,
)
from tac.observability import _hooks as _obs

if TYPE_CHECKING:
    from fastapi import WebSocket

    from tac.channels.websocket_protocol import WebSocketProtocol
    from tac.core.tac import TAC

__all__ = [
    "AmdHandler",
    "CallStatusHandler",
    "InboundCallTwiMLHandler",
    "RecordingHandler",
    "VoiceChannel",
]

logger = get_logger("channels.voice")

F = TypeVar("F", bound=Callable[..., Any])
_E = TypeVar("_E", CallStatusEvent, AmdEvent, RecordingEvent, ConversationRelayCallbackPayload)

InboundCallTwiMLHandler = Callable[[TwiMLRequest], Any]
"""``(TwiMLRequest) -> VoiceTwiMLOptionsConversationRelay | None``, sync or async."""
CallStatusHandler = Callable[[CallStatusEvent], Any]
AmdHandler = Callable[[AmdEvent], Any]
RecordingHandler = Callable[[RecordingEvent], Any]


class VoiceChannel(BaseChannel):
    """Phone calls: ``POST /twiml`` answers with ConversationRelay TwiML, ``/ws`` runs the call.

    ``VoiceChannel(tac, config=VoiceChannelConfig(memory_mode="always"))``. Every call's
    session ends when its WebSocket closes. Voice controls work on live calls of this process:
    :meth:`send_response`, :meth:`play`, :meth:`send_digits`, :meth:`set_language`,
    :meth:`hang_up`; :meth:`end_call` hangs up any call through the Calls API.
    """

    channel = Channel.VOICE

    def __init__(
        self,
        tac: TAC,
        config: VoiceProviderConfig | Mapping[str, Any] | None = None,
    ) -> None:
        if config is None:
            config = ConversationRelayProviderConfig()
        elif isinstance(config, Mapping):
            try:
                config = ConversationRelayProviderConfig.model_validate(dict(config))
            except ValidationError as exc:
                where, message = first_error(exc, "config")
                raise ValueError(f"VoiceChannel config.{where}: {message}") from None
        if not isinstance(config, VoiceProviderConfig):
            raise TypeError(f"config must be a VoiceChannelConfig, got {type(config).__name__}")
        super().__init__(tac, memory_mode=config.memory_mode)
        self.config = config
        self._inbound_twiml_hook: InboundCallTwiMLHandler | None = None
        self._call_event_handlers: dict[str, Callable[..., Any]] = {}
        self._action_hook: Callable[..., Any] | None = None
        self._provider: VoiceProvider = config.create_provider(self, tac.config)

    @property
    def provider(self) -> VoiceProvider:
        return self._provider

    # -- hooks ---------------------------------------------------------------------------------

    def on_inbound_call_twiml(self, callback: F) -> F:
        """``callback(TwiMLRequest)`` → options for this call (or ``None``); sync or async."""
        self._inbound_twiml_hook = _callable("on_inbound_call_twiml", callback)
        return callback

    def on_call_status(self, callback: F) -> F:
        """``callback(CallStatusEvent)`` for outbound calls' status callbacks; sync or async."""
        self._call_event_handlers["status"] = _callable("on_call_status", callback)
        return callback

    def on_amd(self, callback: F) -> F:
        """``callback(AmdEvent)`` with the answering-machine-detection result; sync or async."""
        self._call_event_handlers["amd"] = _callable("on_amd", callback)
        return callback

    def on_recording(self, callback: F) -> F:
        """``callback(RecordingEvent)`` when a recording changes status; sync or async."""
        self._call_event_handlers["recording"] = _callable("on_recording", callback)
        return callback

    def on_session_end_twiml(self, callback: F) -> F:
        """``callback(ConversationRelayCallbackPayload)`` → TwiML (str) for the call after the
        ConversationRelay session ended (e.g. ``<Dial>`` a human), or ``None`` to hang up."""
        self._action_hook = _callable("on_session_end_twiml", callback)
        return callback

    @property
    def inbound_twiml_hook(self) -> InboundCallTwiMLHandler | None:
        """The ``on_inbound_call_twiml`` callback, if one is registered."""
        return self._inbound_twiml_hook

    def handles_call_event(self, kind: str) -> bool:
        """Whether a handler is registered for call events of ``kind`` (``status``, ``amd``,
        ``recording``): outbound calls ask Twilio for those callbacks only."""
        return kind in self._call_event_handlers

    # -- voice controls ------------------------------------------------------------------------

    async def send_response(
        self,
        conversation_id: str,
        response: str | AsyncIterator[str],
        role: str | None = None,
    ) -> None:
        """Speak ``response`` in the live call: a str, or an async iterator streamed as tokens.

        A str reaches a call live on another instance too (through the shared store)."""
        await self._provider.speak(conversation_id, response)

    async def play(
        self,
        conversation_id: str,
        url: str,
        *,
        loop: int | None = None,
        preemptible: bool | None = None,
        interruptible: bool | None = None,
    ) -> None:
        """Play the audio file at ``url`` to the caller."""
        await self._relay().control(
            conversation_id,
            "play",
            url,
            loop=loop,
            preemptible=preemptible,
            interruptible=interruptible,
        )

    async def send_digits(self, conversation_id: str, digits: str) -> None:
        """Play DTMF tones (``0-9``, ``#``, ``*``, ``w`` = half-second pause)."""
        await self._relay().control(conversation_id, "sendDigits", digits)

    async def set_language(
        self,
        conversation_id: str,
        *,
        tts: str | None = None,
        transcription: str | None = None,
    ) -> None:
        """Switch the text-to-speech and/or transcription language of the call."""
        await self._relay().control(
            conversation_id, "language", tts=tts, transcription=transcription
        )

    async def hang_up(self, conversation_id: str, handoff_data: str | None = None) -> None:
        """End the ConversationRelay session (``end``); ``handoff_data`` goes to the action URL.

        Works on whichever instance holds the call (with a shared store)."""
        await self._relay().control(conversation_id, "end", handoff_data)

    async def end_call(self, call_sid: str) -> bool:
        """Hang up ``call_sid`` through the Calls API and end its session. Never raises."""
        try:
            await self.tac.calls_client.end_call(call_sid)
        except Exception as exc:
            await self.tac.trigger_error(exc, {"call_sid": call_sid, "channel": "voice"})
            return False
        conversation_id = await self.tac.conversation_for_call(call_sid)
        await self.tac.end_session(conversation_id or call_sid, reason="call ended")
        return True

    def get_websocket(self, conversation_id: str) -> WebSocket | None:
        """The live call's WebSocket in this process, if any."""
        return self._provider.get_websocket(conversation_id)

    def get_conversation_session_by_call_sid(self, call_sid: str) -> ConversationSession | None:
        """The session of a call live in this process (``None`` before ``setup`` or after)."""
        return self._provider.session_for_call(call_sid)

    # -- Twilio's callbacks (the routes call these) -------------------------------------------

    async def handle_call_status_event(self, payload: CallStatusEvent | Mapping[str, Any]) -> None:
        """Run ``on_call_status`` for a status callback (a form mapping or the event)."""
        await self.handle_call_event("status", _event(CallStatusEvent, payload))

    async def handle_amd_event(self, payload: AmdEvent | Mapping[str, Any]) -> None:
        """Run ``on_amd`` for an answering-machine-detection callback."""
        await self.handle_call_event("amd", _event(AmdEvent, payload))

    async def handle_recording_event(self, payload: RecordingEvent | Mapping[str, Any]) -> None:
        """Run ``on_recording`` for a recording status callback."""
        await self.handle_call_event("recording", _event(RecordingEvent, payload))

    async def handle_twilio_provider_callback(
        self, payload: ConversationRelayCallbackPayload | Mapping[str, Any]
    ) -> str | None:
        """The ``<Connect action>`` callback: the TwiML of ``on_session_end_twiml``, if any."""
        event = _event(ConversationRelayCallbackPayload, payload)
        logger.info(
            "ConversationRelay session ended",
            call_sid=event.call_sid,
            session_status=event.session_status,
            error_code=event.error_code,
        )
        await self._call_over(event.call_sid)
        if self._action_hook is None:
            return None
        try:
            twiml = await invoke(self._action_hook, event)
        except Exception as exc:
            await self.tac.trigger_error(
                exc, {"call_sid": event.call_sid, "channel": "voice", "route": "action"}
            )
            return None
        return twiml if isinstance(twiml, str) and twiml else None

    async def handle_call_event(self, kind: str, event: Any) -> None:
        """A call event (``status``, ``amd``, ``recording``): its handler, and a call that is
        over ends its session."""
        if kind == "status" and event.call_status:
            _obs.observer.delivery_status("voice", event.call_status)
        if kind == "status" and (event.call_status or "").lower() in _CALL_OVER:
            await self._call_over(event.call_sid)
        handler = self._call_event_handlers.get(kind)
        if handler is None:
            return
        try:
            await invoke(handler, event)
        except Exception as exc:
            await self.tac.trigger_error(
                exc, {"call_sid": event.call_sid, "channel": "voice", "event": kind}
            )

    def _relay(self) -> ConversationRelayProvider:
        provider = self._provider
        if not isinstance(provider, ConversationRelayProvider):
            raise TypeError(f"{type(provider).__name__} has no ConversationRelay controls")
        return provider

    # -- calls ---------------------------------------------------------------------------------

    async def handle_incoming_call(
        self,
        twiml_request: TwiMLRequest | None = None,
        *,
        host_twiml_options: VoiceTwiMLOptions | None = None,
    ) -> str:
        """The TwiML answering an incoming call."""
        return await self._provider.handle_incoming_call(
            twiml_request, host_twiml_options=host_twiml_options
        )

    async def handle_websocket(self, websocket: WebSocket | WebSocketProtocol) -> None:
        """Serve one call's WebSocket until it closes.

        Takes a Starlette/FastAPI ``WebSocket`` or a :class:`tac.server.FastAPIWebSocketAdapter`
        around one.
        """
        from starlette.websockets import WebSocket as StarletteWebSocket

        inner = getattr(websocket, "websocket", websocket)  # the adapter wraps one
        if not isinstance(inner, StarletteWebSocket):
            raise TypeError(
                "handle_websocket takes a Starlette/FastAPI WebSocket or a "
                f"tac.server.FastAPIWebSocketAdapter, got {type(websocket).__name__}"
            )
        await self._provider.handle_websocket(inner)

    async def initiate_outbound_conversation(
        self, options: InitiateVoiceConversationOptions
    ) -> InitiateVoiceConversationResult:
        """Call ``options.to``; the call connects to this app's ConversationRelay WebSocket."""
        return await self._provider.initiate_outbound_conversation(options)

    async def process_webhook(
        self, webhook_data: WebhookEvent | dict[str, Any], idempotency_token: str | None = None
    ) -> None:
        """Orchestrator events for voice conversations: CLOSED ends, INACTIVE refreshes memory."""
        event = (
            webhook_data
            if isinstance(webhook_data, WebhookEvent)
            else (WebhookEvent.parse(webhook_data))
        )
        if event.event_type != "CONVERSATION_UPDATED":
            return  # voice turns come over the WebSocket, not as communications
        conversation_id = str(event.data.get("id", ""))
        status = str(event.data.get("status", "")).upper()
        if status == "INACTIVE":
            await self.tac.invalidate_memory_cache(conversation_id)
        elif status == "CLOSED" and not await self._live_anywhere(conversation_id):
            # CLOSED never ends a live call's session (on any instance): the call's end does
            await self.tac.end_session(conversation_id, reason="closed")

    async def start(self) -> None:
        await self._provider.start()

    async def aclose(self) -> None:
        await self._provider.aclose()

    async def _live_anywhere(self, call_id: str) -> bool:
        """Whether the provider holds the call here or on another instance."""
        return await self._provider.live_anywhere(call_id)

    async def _call_over(self, call_sid: str) -> None:
        """A callback said the call (or its ConversationRelay session) is over: end its session
        unless an instance still holds the call (its socket's close ends it there)."""
        try:
            if await self._live_anywhere(call_sid):
                return
            conversation_id = await self.tac.conversation_for_call(call_sid)
            await self.tac.end_session(conversation_id or call_sid, reason="call ended")
        except Exception as exc:
            await self.tac.trigger_error(exc, {"call_sid": call_sid, "channel": "voice"})


_CALL_OVER = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def _event(model: type[_E], payload: _E | Mapping[str, Any]) -> _E:
    return payload if isinstance(payload, model) else model.from_form(payload)  # type: ignore[arg-type]


def _callable(name: str, callback: Any) -> Any:
    if not callable(callback):
        raise TypeError(f"{name} needs a callable, got {type(callback).__name__}")
    return callback
