"""The Media Streams bridge: a call's μ-law audio between Twilio and a speech-to-speech model.

One :class:`_StreamCall` per WebSocket, registered in :attr:`MediaStreamsProvider.calls` from
``start`` until the socket closes (then its session ends, its model session closes and, in
Orchestrator mode, its conversation is closed). Audio is never decoded: Twilio's base64 μ-law
goes to the model as is, and the model's deltas go back as ``media`` frames, each followed by a
``mark``. Twilio echoes a mark once the audio before it has played, so the bridge always knows
how much of the model's item the caller has *heard*; on barge-in it sends ``clear``, drops the
rest of that item and truncates it to what was heard.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

from pydantic import Field, ValidationError

from tac.adapters import MemoryPromptBuilder
from tac.channels.voice._base import VoiceProvider
from tac.channels.voice.media_streams._protocol import (
    MediaStreamsProtocolError,
    StreamFrames,
    audio_ms,
    is_base64,
    parse_frame,
    string_field,
)
from tac.channels.voice.media_streams.base import (
    AudioDelta,
    CallContext,
    ModelError,
    ResponseDone,
    ResponseStarted,
    SessionStarted,
    SpeechStarted,
    SpeechToSpeechConnection,
    SpeechToSpeechModel,
    ToolCall,
    Transcript,
)
from tac.channels.voice.media_streams.config import MediaStreamsProviderConfig
from tac.channels.voice.media_streams.twiml import (
    default_stream_options,
    generate_twiml,
    merge_stream_options,
)
from tac.core._callbacks import invoke
from tac.core.logging import get_logger
from tac.models._base import first_error
from tac.models.conversation import (
    CommunicationContent,
    CommunicationParticipant,
    CommunicationRequest,
    ConversationRequest,
    ParticipantAddress,
    ParticipantRequest,
)
from tac.models.session import AuthorInfo, Channel, ConversationSession
from tac.models.stream import (
    StreamStartMessage,
    VoiceTwiMLOptionsMediaStreams,
)
from tac.models.voice import (
    CallOptions,
    InitiateVoiceConversationOptions,
    InitiateVoiceConversationResult,
    InterruptMessage,
    TwiMLRequest,
    VoiceTwiMLOptions,
)
from tac.tools.base import TACTool

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from tac.channels.voice.channel import VoiceChannel
    from tac.core.config import TACConfig
    from tac.core.tac import TAC

__all__ = [
    "MediaStreamsBridgeConfig",
    "MediaStreamsProvider",
    "SpeechToSpeechProvider",
    "SpeechToSpeechProviderConfig",
]

logger = get_logger("channels.voice.media_streams")

SESSION_CONFIG_TOKEN_PARAMETER = "_tac_session_config_token"
_FROM_PARAMETER = "_tac_from"
_TO_PARAMETER = "_tac_to"
_DIRECTION_PARAMETER = "_tac_direction"
_INTERNAL_PARAMETERS = frozenset(
    {SESSION_CONFIG_TOKEN_PARAMETER, _FROM_PARAMETER, _TO_PARAMETER, _DIRECTION_PARAMETER}
)
_TOKEN_TTL_SECONDS = 120.0
_CLOSE_WAIT_SECONDS = 5.0
_BACKGROUND_WAIT_SECONDS = 5.0

SessionToolsFactory = Callable[[ConversationSession], Any]
"""``(session) -> [TACTool, ...]``, sync or async: tools built per call (handoff, memory, …)."""


class MediaStreamsBridgeConfig(MediaStreamsProviderConfig):
    """Settings of the bridge itself, shared by every speech-to-speech provider.

    - ``tools``: tools every call's model may call (``TACTool``).
    - ``tools_for_session``: builds more tools per call from its session, e.g.
      ``lambda s: [create_studio_handoff_tool(tac, s), create_memory_tool(client, s)]``.
    - ``default_call_options``: Calls API options of every outbound call.
    - ``handoff_playback_timeout``: how long (s) a handoff waits for the caller to hear the
      model's last words before the call is redirected.
    - ``mark_interval_ms``: audio between two ``mark`` messages (0: one after every model
      delta). What the caller heard is known to this precision; a response's end is always
      marked.
    - ``input_audio_batch_ms``: the caller's audio goes to the model in chunks of this much
      (Twilio sends 20 ms frames; 40 halves the messages to the model for 20 ms more delay).
    """

    tools: list[TACTool] = Field(default_factory=list)
    tools_for_session: SessionToolsFactory | None = None
    default_call_options: CallOptions | None = None
    handoff_playback_timeout: float = Field(default=10.0, ge=0)
    mark_interval_ms: int = Field(default=100, ge=0)
    input_audio_batch_ms: int = Field(default=20, ge=20, le=1000, multiple_of=20)


class _StreamCall:
    """A live stream: its sockets, what was played and heard, and its background work."""

    __slots__ = (
        "background",
        "call_sid",
        "connection",
        "conversation_id",
        "created_conversation",
        "degraded",
        "frames",
        "heard_item",
        "heard_ms",
        "instructions",
        "mark_seq",
        "marked_ms",
        "memory_refresh",
        "muted",
        "pending_marks",
        "playback_done",
        "playing_item",
        "playing_ms",
        "pump",
        "responding",
        "session",
        "start",
        "tools",
        "transcript",
        "websocket",
    )

    def __init__(self, websocket: WebSocket, start: StreamStartMessage) -> None:
        self.websocket = websocket
        self.start = start
        self.call_sid = start.call_sid
        self.conversation_id = start.call_sid
        self.frames = StreamFrames(start.stream_sid)
        self.session: ConversationSession | None = None
        self.connection: SpeechToSpeechConnection | None = None
        self.pump: asyncio.Task[None] | None = None
        self.background: set[asyncio.Task[Any]] = set()
        self.memory_refresh: asyncio.Task[None] | None = None
        self.degraded = False
        self.created_conversation = False
        self.responding = False
        # playback: (mark name, item id, ms of that item played once the mark is reached)
        self.pending_marks: deque[tuple[str, str, int]] = deque()
        self.playback_done = asyncio.Event()
        self.playback_done.set()
        self.mark_seq = 0
        self.playing_item = ""
        self.playing_ms = 0
        self.marked_ms = 0
        self.heard_item = ""
        self.heard_ms = 0
        self.muted: set[str] = set()
        self.transcript: list[dict[str, str]] = []
        self.tools: list[TACTool] = []
        self.instructions: str | None = None  # the model's own, before memory was added

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(f"{name}:{self.call_sid}")
        self.background.add(task)
        task.add_done_callback(self.background.discard)


class MediaStreamsProvider(VoiceProvider):
    """Serves Media Streams calls bridged to a speech-to-speech model.

    Subclasses say how a call's model session is described and opened
    (:meth:`_call_context`, :meth:`_connect`); everything else is shared.
    """

    provider_id = "media_streams"
    channel_name = "VOICE_MEDIA_STREAM"

    def __init__(self, channel: VoiceChannel, config: MediaStreamsBridgeConfig) -> None:
        super().__init__(channel)
        self.config = config
        self.calls: dict[str, _StreamCall] = {}
        """Live calls of this process by CallSid and by conversation id (same object)."""
        self._session_configs: dict[str, tuple[float, dict[str, Any]]] = {}
        self._drained = asyncio.Event()

    @property
    def tac(self) -> TAC:
        return self.channel.tac

    # -- what subclasses provide -----------------------------------------------------------------

    @abstractmethod
    async def _call_context(
        self, start: StreamStartMessage, session: ConversationSession, per_call: dict[str, Any]
    ) -> CallContext:
        """The model session for this call (``per_call``: an outbound call's own config)."""

    @abstractmethod
    async def _connect(self, context: CallContext) -> SpeechToSpeechConnection:
        """Open the model session."""

    async def _inbound_session_config(self, request: TwiMLRequest) -> dict[str, Any] | None:
        """A per-call session config for an incoming call (subclasses may ask a hook)."""
        return None

    # -- TwiML -----------------------------------------------------------------------------------

    def _remember_session_config(self, session_config: dict[str, Any]) -> str:
        now = time.monotonic()
        for token, (expires, _) in list(self._session_configs.items()):
            if expires < now:
                del self._session_configs[token]
        token = secrets.token_hex(16)
        self._session_configs[token] = (now + _TOKEN_TTL_SECONDS, session_config)
        return token

    def _take_session_config(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        found = self._session_configs.pop(token, None)
        if found is None or found[0] < time.monotonic():
            return {}
        return found[1]

    async def handle_incoming_call(
        self,
        twiml_request: TwiMLRequest | None = None,
        *,
        host_twiml_options: VoiceTwiMLOptions | None = None,
    ) -> str:
        """``<Connect><Stream>`` for an incoming call: defaults < host < channel < the hook."""
        if host_twiml_options is not None and not isinstance(
            host_twiml_options, VoiceTwiMLOptionsMediaStreams
        ):
            raise TypeError("host_twiml_options must be VoiceTwiMLOptionsMediaStreams")
        request = twiml_request or TwiMLRequest()
        custom = None
        hook = self.channel.inbound_twiml_hook
        if hook is not None:
            custom = await invoke(hook, request)
            if custom is not None and not isinstance(custom, VoiceTwiMLOptionsMediaStreams):
                raise TypeError(
                    "on_inbound_call_twiml must return VoiceTwiMLOptionsMediaStreams or "
                    f"None, got {type(custom).__name__}"
                )
        options = merge_stream_options(
            default_stream_options(self.tac.config),
            host_twiml_options,
            self.config.default_twiml_options,
            custom,
        )
        parameters = dict(options.custom_parameters or {})
        parameters[_FROM_PARAMETER] = request.from_number
        parameters[_TO_PARAMETER] = request.to_number
        parameters[_DIRECTION_PARAMETER] = request.direction or "inbound"
        per_call = await self._inbound_session_config(request)
        if per_call:
            parameters[SESSION_CONFIG_TOKEN_PARAMETER] = self._remember_session_config(per_call)
        options = options.model_copy(update={"custom_parameters": parameters})
        if not options.websocket_url:
            raise ValueError(
                "no WebSocket URL for the call: set TAC_PUBLIC_BASE_URL or "
                "default_twiml_options.websocket_url"
            )
        return generate_twiml(options=options)

    # -- outbound --------------------------------------------------------------------------------

    async def initiate_outbound_conversation(
        self, options: InitiateVoiceConversationOptions
    ) -> InitiateVoiceConversationResult:
        """Call ``options.to``; the answered call streams to this app's WebSocket."""
        twiml_options = options.twiml_options
        if twiml_options is not None and not isinstance(
            twiml_options, VoiceTwiMLOptionsMediaStreams
        ):
            raise TypeError("twiml_options must be VoiceTwiMLOptionsMediaStreams")
        merged = merge_stream_options(
            default_stream_options(self.tac.config),
            self.config.default_twiml_options,
            twiml_options,
        )
        if options.websocket_url:
            merged = merge_stream_options(
                merged, VoiceTwiMLOptionsMediaStreams(websocket_url=options.websocket_url)
            )
        if not merged.websocket_url:
            raise ValueError(
                "no WebSocket URL for the call: set TAC_PUBLIC_BASE_URL or pass websocket_url"
            )
        config = self.tac.config
        parameters = dict(merged.custom_parameters or {})
        parameters[_FROM_PARAMETER] = config.phone_number
        parameters[_TO_PARAMETER] = options.to
        parameters[_DIRECTION_PARAMETER] = "outbound-api"
        session_config = getattr(options, "session_config", None)
        if session_config:
            parameters[SESSION_CONFIG_TOKEN_PARAMETER] = self._remember_session_config(
                dict(session_config)
            )
        merged = merged.model_copy(update={"custom_parameters": parameters})
        call = await self.tac.calls_client.create_call(
            options.to,
            config.phone_number,
            twiml=generate_twiml(options=merged),
            **self.call_kwargs(self.config.default_call_options, options.call_options),
        )
        logger.info("outbound Media Streams call placed", call_sid=call.sid)
        return InitiateVoiceConversationResult(call_sid=call.sid)

    # -- the WebSocket ---------------------------------------------------------------------------

    async def handle_websocket(self, websocket: WebSocket) -> None:
        """Serve one stream: wait for ``start``, bridge audio until ``stop`` or a close."""
        await websocket.accept()
        call: _StreamCall | None = None
        try:
            start = await self._await_start(websocket)
            if start is None:
                return
            call = _StreamCall(websocket, start)
            try:
                await self._open(call)
            except Exception as exc:  # no session or no model: no call
                await self._report(call, exc, "start")
                with contextlib.suppress(Exception):
                    await websocket.close(code=1011)
                return
            # its own task: each frame resumes a short chain of awaits, not the ~30 of the
            # ASGI stack under this handler
            await asyncio.get_running_loop().create_task(
                self._receive(call), name=f"media-streams-twilio:{call.call_sid}"
            )
        except (RuntimeError, OSError) as exc:  # the socket went away under us
            logger.debug("Media Streams socket lost: %s", exc)
        finally:
            if call is not None:
                await self._close(call)

    async def _await_start(self, websocket: WebSocket) -> StreamStartMessage | None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return None
            try:
                data = parse_frame(message.get("text") or message.get("bytes") or b"")
                if data["event"] == "connected":
                    continue
                if data["event"] != "start":
                    raise MediaStreamsProtocolError(
                        f"first message must be 'start', got {data['event']!r}"
                    )
                body = data.get("start")
                if not isinstance(body, dict):
                    raise MediaStreamsProtocolError("start: missing 'start' object")
                body = {"streamSid": data.get("streamSid"), **body}
                return StreamStartMessage.model_validate(body)
            except ValidationError as exc:
                where, problem = first_error(exc, "start")
                reason = f"invalid start: start.{where}: {problem}"
            except MediaStreamsProtocolError as exc:
                reason = str(exc)
            logger.warning("Media Streams session refused: %s", reason)
            await websocket.close(code=1002, reason=reason[:120])
            return None

    async def _receive(self, call: _StreamCall) -> None:
        """Twilio → app until ``stop`` or a close; ``media`` is the hot path."""
        receive = call.websocket.receive
        connection = call.connection
        assert connection is not None
        send_audio = _batched(connection.send_audio, self.config.input_audio_batch_ms // 20)
        loads = json.loads
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                if text.startswith(_MEDIA_PREFIX):
                    payload = _inbound_payload(text)
                    if payload is not None:  # the hot path: one frame per 20 ms per call
                        try:
                            await send_audio(payload)
                        except Exception as exc:
                            if not _disconnected(exc):
                                await self._report(call, exc, "audio")
                            return
                        continue
                elif text.startswith(_MARK_PREFIX):  # one per mark_interval_ms of playback
                    name = string_field(text, "name")
                    if name is not None:
                        self._heard(call, name)
                        continue
            try:
                data = loads(text if text is not None else message.get("bytes") or b"")
                event = data["event"]
                if event == "media":
                    media = data["media"]
                    if media.get("track", "inbound") == "inbound":
                        payload = media["payload"]
                        if type(payload) is str and is_base64(payload):  # spliced as is
                            await send_audio(payload)
                elif event == "mark":
                    self._heard(call, str(data["mark"]["name"]))
                elif event == "dtmf":
                    digit = str(data["dtmf"]["digit"])
                    if call.session is not None:
                        await self.tac.trigger_dtmf(call.session, digit)
                elif event == "stop":
                    return
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("Media Streams frame dropped: %s", exc, call_sid=call.call_sid)
            except Exception as exc:  # the model connection failed: the call cannot go on
                if not _disconnected(exc):
                    await self._report(call, exc, "audio")
                return

    async def _report(self, call: _StreamCall, exc: BaseException, stage: str) -> None:
        await self.tac.trigger_error(
            exc,
            {
                "conversation_id": call.conversation_id,
                "call_sid": call.call_sid,
                "channel": "voice",
                "provider": self.provider_id,
                "stage": stage,
            },
        )

    # -- opening a call --------------------------------------------------------------------------

    async def _open(self, call: _StreamCall) -> None:
        """``start`` arrived: session (linked to its conversation), memory, model."""
        self.calls[call.call_sid] = call
        self._drained.clear()
        start = call.start
        params = start.custom_parameters
        public = {k: v for k, v in params.items() if k not in _INTERNAL_PARAMETERS}
        direction = params.get(_DIRECTION_PARAMETER) or "inbound"
        inbound = not direction.startswith("outbound")
        customer = params.get(_FROM_PARAMETER) if inbound else params.get(_TO_PARAMETER)
        agent = params.get(_TO_PARAMETER) if inbound else params.get(_FROM_PARAMETER)
        session = ConversationSession(
            conversation_id=call.call_sid,
            channel=Channel.VOICE,
            call_sid=call.call_sid,
            profile_id=public.get("profileId"),
            author_info=AuthorInfo(
                address=customer or None, participant_id=public.get("customerParticipantId")
            ),
            ai_agent_info=AuthorInfo(
                address=agent or None, participant_id=public.get("aiAgentParticipantId")
            ),
            custom_parameters=public,
            metadata={
                "direction": direction,
                "channel_id": call.call_sid,
                "stream_sid": start.stream_sid,
                "provider": self.provider_id,
            },
        )
        if self.tac.is_orchestrator_enabled():
            await self._link_conversation(call, session)
        stored, _ = await self.tac.start_session(session)
        call.session = stored
        call.conversation_id = stored.conversation_id
        await self.tac.session_store.live_calls.register(
            *{call.call_sid, stored.conversation_id},
            ttl_seconds=self.tac.config.session_ttl_seconds,
        )
        if stored.conversation_id != call.call_sid:
            self.calls[stored.conversation_id] = call
            await self.tac.link_call(call.call_sid, stored.conversation_id)
        per_call = self._take_session_config(params.get(SESSION_CONFIG_TOKEN_PARAMETER))
        context = await self._call_context(start, stored, per_call)
        context.tools = [*context.tools, *await self._tools(stored)]
        call.tools = context.tools
        call.instructions = context.instructions
        context.instructions = await self._instructions(call, stored, context.instructions)
        call.connection = await self._connect(context)
        call.pump = asyncio.get_running_loop().create_task(
            self._pump(call), name=f"media-streams-model:{call.call_sid}"
        )
        await self.tac.trigger_setup(stored)

    async def _link_conversation(self, call: _StreamCall, session: ConversationSession) -> None:
        """Orchestrator mode: the call's conversation (given, or created for it) and profile."""
        client = self.tac.conversation_orchestrator_client
        assert client is not None
        conversation_id = session.custom_parameters.get("conversationId")
        customer = session.author_info.address if session.author_info else None
        agent = session.ai_agent_info.address if session.ai_agent_info else None
        try:
            if conversation_id is None:
                participants = []
                if customer:
                    participants.append(
                        ParticipantRequest(
                            type="CUSTOMER",
                            addresses=[
                                ParticipantAddress(
                                    channel="VOICE", address=customer, channel_id=call.call_sid
                                )
                            ],
                        )
                    )
                if agent:
                    participants.append(
                        ParticipantRequest(
                            type="AI_AGENT",
                            addresses=[
                                ParticipantAddress(
                                    channel="VOICE", address=agent, channel_id=call.call_sid
                                )
                            ],
                        )
                    )
                request = ConversationRequest(
                    configuration_id=self.tac.config.conversation_configuration_id or "",
                    name=f"Voice call {call.call_sid}",
                    participants=participants or None,
                )
                conversation_id, reused = await client.create_or_reuse_conversation(
                    request, idempotency_key=f"media-streams-{call.call_sid}"
                )
                call.created_conversation = not reused
            for participant in await client.list_participants(conversation_id):
                kind = (participant.type or "").upper()
                if kind == "CUSTOMER":
                    session.profile_id = session.profile_id or participant.profile_id
                    assert session.author_info is not None
                    session.author_info.participant_id = (
                        session.author_info.participant_id or participant.id
                    )
                elif kind in ("AI_AGENT", "AGENT") and session.ai_agent_info is not None:
                    session.ai_agent_info.participant_id = (
                        session.ai_agent_info.participant_id or participant.id
                    )
        except Exception as exc:  # the call goes on without its conversation
            call.degraded = conversation_id is None
            logger.warning("Orchestrator conversation unavailable: %s", exc, call_sid=call.call_sid)
        if conversation_id is not None:
            session.conversation_id = conversation_id

    async def _tools(self, session: ConversationSession) -> list[TACTool]:
        tools = list(self.config.tools)
        factory = self.config.tools_for_session
        if factory is not None:
            made = factory(session)
            if asyncio.iscoroutine(made) or isinstance(made, Awaitable):
                made = await made
            tools.extend(made)
        return tools

    async def _instructions(
        self, call: _StreamCall, session: ConversationSession, base: str | None
    ) -> str | None:
        """The model's instructions with the customer's profile and memory (``memory_mode``)."""
        mode = self.config.memory_mode
        if mode == "never" or call.degraded:
            return base
        try:
            memory = await self.tac.memory_for_turn(session, mode, "")
        except Exception as exc:
            logger.warning("memory unavailable: %s", exc, call_sid=call.call_sid)
            return base
        return MemoryPromptBuilder.compose(base, memory, session) or base

    async def _refresh_memory(self, call: _StreamCall, query: str) -> None:
        """``memory_mode="always"``: fresh memory for what the caller just said."""
        session, connection = call.session, call.connection
        if session is None or connection is None:
            return
        try:
            memory = await self.tac.memory_for_turn(session, "always", query)
            base = call.instructions
            await connection.update_instructions(
                MemoryPromptBuilder.compose(base, memory, session) or base or ""
            )
        except Exception as exc:
            logger.warning("memory refresh failed: %s", exc, call_sid=call.call_sid)

    # -- model → Twilio --------------------------------------------------------------------------

    async def _pump(self, call: _StreamCall) -> None:
        """Model events until its session closes; then the call ends."""
        connection = call.connection
        assert connection is not None
        send = call.websocket.send_text
        frames = call.frames
        interval = self.config.mark_interval_ms
        try:
            async for event in connection.events():
                if type(event) is AudioDelta:
                    item = event.item_id
                    if item in call.muted or not is_base64(event.payload):
                        continue
                    payload = event.payload
                    if item != call.playing_item:
                        if call.playing_ms > call.marked_ms:
                            await self._mark(call)  # the end of the previous item
                        call.playing_item = item
                        call.playing_ms = call.marked_ms = 0
                    call.playing_ms += audio_ms(payload)
                    call.playback_done.clear()
                    await send(frames.media(payload))
                    if call.playing_ms - call.marked_ms >= interval:
                        await self._mark(call)
                elif isinstance(event, SpeechStarted):
                    await self._barge_in(call)
                elif isinstance(event, ResponseStarted):
                    call.responding = True
                elif isinstance(event, ResponseDone):
                    call.responding = False
                    if call.playing_ms > call.marked_ms:
                        await self._mark(call)
                    await self._after_response(call)
                elif isinstance(event, ToolCall):
                    call.spawn(self._run_tool(call, event), "media-streams-tool")
                elif isinstance(event, Transcript):
                    self._transcribed(call, event)
                elif isinstance(event, SessionStarted):
                    if call.session is not None:
                        call.session.metadata["model_session_id"] = event.session_id
                elif isinstance(event, ModelError):
                    logger.warning(
                        "the model reported an error: %s",
                        event.message,
                        code=event.code,
                        call_sid=call.call_sid,
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if _disconnected(exc):  # the caller hung up, or the model went away, mid-send
                logger.debug("Media Streams call ended mid-send: %r", exc, call_sid=call.call_sid)
            else:
                await self._report(call, exc, "model")
        # the model's session is over: so is the call's stream
        with contextlib.suppress(Exception):
            await call.websocket.close(code=1000)

    async def _mark(self, call: _StreamCall) -> None:
        """Ask Twilio to tell when the audio sent so far has played."""
        call.mark_seq += 1
        name = f"m{call.mark_seq}"
        call.marked_ms = call.playing_ms
        call.pending_marks.append((name, call.playing_item, call.playing_ms))
        await call.websocket.send_text(call.frames.mark(name))

    def _heard(self, call: _StreamCall, name: str) -> None:
        """Twilio played everything up to mark ``name``."""
        pending = call.pending_marks
        if not any(entry[0] == name for entry in pending):
            return  # a mark of audio cleared by a barge-in
        while pending:
            mark, item, played_ms = pending.popleft()
            if mark == name:
                call.heard_item = item
                call.heard_ms = played_ms
                break
        if not pending:
            call.playback_done.set()

    async def _barge_in(self, call: _StreamCall) -> None:
        """The caller spoke: stop the audio they have not heard, cut the item to what they did."""
        connection = call.connection
        assert connection is not None
        unheard = bool(call.pending_marks) or call.playing_ms > call.marked_ms
        if not unheard and not call.responding:
            return
        item = call.playing_item
        heard_ms = call.heard_ms if call.heard_item == item else 0
        if unheard:
            await call.websocket.send_text(call.frames.clear())
            call.pending_marks.clear()
            call.marked_ms = call.playing_ms
            call.playback_done.set()
        if call.responding:
            await connection.cancel_response()
        if item:
            call.muted.add(item)
            if unheard:
                await connection.truncate(item, heard_ms)
        if call.session is not None:
            await self.tac.trigger_interrupt(
                call.session,
                InterruptMessage(
                    utterance_until_interrupt="", duration_until_interrupt_ms=heard_ms
                ),
            )

    async def _run_tool(self, call: _StreamCall, event: ToolCall) -> None:
        connection = call.connection
        assert connection is not None
        tool = next((t for t in call.tools if t.name == event.name), None)
        if tool is None:
            output = json.dumps({"error": f"no tool named {event.name!r}"})
        else:
            output = await tool.invoke(event.arguments or "{}")
        with contextlib.suppress(Exception):
            await connection.send_tool_result(event.call_id, output)

    def _transcribed(self, call: _StreamCall, event: Transcript) -> None:
        text = event.text.strip()
        if not text:
            return
        call.transcript.append({"role": event.role, "text": text})
        if call.session is not None:
            call.session.metadata["transcript"] = list(call.transcript)
            call.spawn(self.tac.save_session(call.session), "media-streams-save")
        if self.tac.is_orchestrator_enabled() and not call.degraded:
            call.spawn(
                self._record_communication(call, event.role, text, len(call.transcript)),
                "media-streams-transcript",
            )
        if event.role == "user" and self.config.memory_mode == "always":
            previous = call.memory_refresh
            if previous is None or previous.done():
                call.memory_refresh = asyncio.ensure_future(self._refresh_memory(call, text))

    async def _record_communication(
        self, call: _StreamCall, role: str, text: str, index: int
    ) -> None:
        """A transcript line as a communication of the conversation (Conversation Intelligence
        reads them)."""
        client = self.tac.conversation_orchestrator_client
        session = call.session
        if client is None or session is None:
            return
        customer = CommunicationParticipant(
            address=session.author_info.address if session.author_info else None,
            channel="VOICE",
            participant_id=session.author_info.participant_id if session.author_info else None,
        )
        agent = CommunicationParticipant(
            address=session.ai_agent_info.address if session.ai_agent_info else None,
            channel="VOICE",
            participant_id=(
                session.ai_agent_info.participant_id if session.ai_agent_info else None
            ),
        )
        author, recipient = (customer, agent) if role == "user" else (agent, customer)
        request = CommunicationRequest(
            author=author,
            content=CommunicationContent(type="TEXT", text=text),
            recipients=[recipient],
            channel_id=call.call_sid,
            resource_id=f"{call.call_sid}-{index}",
        )
        try:
            await client.create_communication(call.conversation_id, request)
        except Exception as exc:
            logger.warning("transcript not recorded: %s", exc, call_sid=call.call_sid)

    # -- handoff ---------------------------------------------------------------------------------

    async def _after_response(self, call: _StreamCall) -> None:
        """A response ended: if a handoff is pending, redirect the call once it was heard."""
        session = call.session
        if session is None:
            return
        pending = session.pending_handoff_data
        if pending is None:
            return  # the handoff tool sets it on this very session object
        session.pending_handoff_data = None
        await self.tac.session_store.pop_pending_handoff(call.conversation_id)
        call.spawn(self._hand_off(call, pending.handoff_data), "media-streams-handoff")

    async def _hand_off(self, call: _StreamCall, handoff_data: str) -> None:
        """Let the caller hear the goodbye, then redirect the call to the Studio flow."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(call.playback_done.wait(), self.config.handoff_playback_timeout)
        twiml = handoff_twiml(self.tac, handoff_data)
        try:
            await self.tac.calls_client.update_call(call.call_sid, twiml=twiml)
            logger.info("call handed off", call_sid=call.call_sid)
        except Exception as exc:
            await self._report(call, exc, "handoff")

    # -- live calls ------------------------------------------------------------------------------

    def get_transcript(self, conversation_id: str) -> list[dict[str, str]]:
        """The live call's transcript so far: ``[{"role": "user"|"assistant", "text": ...}]``."""
        call = self.calls.get(conversation_id)
        return [] if call is None else list(call.transcript)

    async def live_anywhere(self, call_id: str) -> bool:
        """Whether the call (conversation id or CallSid) is live here or on another instance."""
        if call_id in self.calls:
            return True
        return await self.tac.session_store.live_calls.elsewhere(call_id)

    async def send_response(self, conversation_id: str, response: Any) -> None:
        raise NotImplementedError(
            "a speech-to-speech model speaks for itself: send_response is ConversationRelay only"
        )

    # -- end of a call ---------------------------------------------------------------------------

    async def _close(self, call: _StreamCall) -> None:
        """The stream ended: close the model, finish background work, end the session."""
        if call.connection is not None:
            with contextlib.suppress(Exception):
                await call.connection.close()
        if call.pump is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(call.pump, _CLOSE_WAIT_SECONDS)
        if call.memory_refresh is not None:
            call.memory_refresh.cancel()
        if call.background:
            await asyncio.wait(set(call.background), timeout=_BACKGROUND_WAIT_SECONDS)
            for task in call.background:
                task.cancel()
        session = call.session
        if session is not None:
            try:
                await self.tac.session_store.live_calls.unregister(
                    *{call.call_sid, call.conversation_id}
                )
                session.metadata["transcript"] = list(call.transcript)
                await self.tac.save_session(session)
                await self.tac.end_session(call.conversation_id, reason="call ended")
            except Exception as exc:
                await self._report(call, exc, "end")
            if call.created_conversation:
                client = self.tac.conversation_orchestrator_client
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.update_conversation(call.conversation_id, "CLOSED")
        if self.calls.get(call.call_sid) is call:
            del self.calls[call.call_sid]
        if self.calls.get(call.conversation_id) is call:
            del self.calls[call.conversation_id]
        if not self.calls:
            self._drained.set()

    async def aclose(self) -> None:
        """Close every live stream (server shutdown); their sessions end as they close."""
        for call in list({id(c): c for c in self.calls.values()}.values()):
            with contextlib.suppress(Exception):
                await call.websocket.close(code=1001)
        if self.calls:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained.wait(), _CLOSE_WAIT_SECONDS)


def handoff_twiml(tac: TAC, handoff_data: str) -> str:
    """TwiML sending a call to the Studio flow with ``HandoffData`` (a ``GET`` redirect: the
    handoff data and the call's parameters both reach Studio as request parameters)."""
    from urllib.parse import quote

    from tac.tools.handoff import studio_voice_handoff_url

    config = tac.config
    url = studio_voice_handoff_url(
        config.account_sid,
        config.studio_handoff_flow_sid or "",
        region=config.region,
        api_base_url=config.api_base_url,
    )
    separator = "&" if "?" in url else "?"
    url = f"{url}{separator}HandoffData={quote(handoff_data, safe='')}"
    return f'<Response><Redirect method="GET">{_xml_text(url)}</Redirect></Response>'


def _batched(send: Callable[[str], Awaitable[None]], frames: int) -> Callable[[str], Any]:
    """``send`` taking ``frames`` Twilio frames at a time (joined), or ``send`` itself for 1."""
    if frames <= 1:
        return send
    parts: list[bytes] = []

    async def send_batch(payload: str) -> None:
        parts.append(base64.b64decode(payload))
        if len(parts) >= frames:
            joined = base64.b64encode(b"".join(parts)).decode()
            parts.clear()
            await send(joined)

    return send_batch


_MEDIA_PREFIX = '{"event":"media"'
_MARK_PREFIX = '{"event":"mark"'
_PAYLOAD_KEY = '"payload":"'


def _inbound_payload(text: str) -> str | None:
    """The caller's audio in a ``media`` frame as Twilio writes it, read by position (no
    ``json.loads``); ``None`` when the frame must be parsed fully (another track, odd shape)."""
    start = text.find(_PAYLOAD_KEY)
    if start < 0 or '"track":"inbound"' not in text:
        return None
    start += len(_PAYLOAD_KEY)
    end = text.find('"', start)
    if end < 0:
        return None
    payload = text[start:end]
    return payload if is_base64(payload) else None


def _disconnected(exc: BaseException) -> bool:
    """Whether ``exc`` only says a socket closed (a hang-up, the model's end), not a fault."""
    from starlette.websockets import WebSocketDisconnect

    if isinstance(exc, (WebSocketDisconnect, OSError, RuntimeError)):
        return True
    try:
        from websockets.exceptions import ConnectionClosed, InvalidState
    except ImportError:  # pragma: no cover - websockets is what the providers use
        return False
    return isinstance(exc, (ConnectionClosed, InvalidState))


def _xml_text(value: str) -> str:
    return quoteattr(value)[1:-1]


class SpeechToSpeechProviderConfig(MediaStreamsBridgeConfig):
    """Any :class:`SpeechToSpeechModel` behind Media Streams (Azure Voice Live, Gemini Live…).

    ``VoiceChannel(tac, config=SpeechToSpeechProviderConfig(model=MyModel(), session_config=
    {...}))``: ``model.connect(CallContext)`` opens each call's session; ``session_config`` is
    handed to it as is (its ``instructions`` get the customer's memory).
    """

    model: Any
    session_config: dict[str, Any] = Field(default_factory=dict)

    def create_provider(
        self, channel: VoiceChannel, tac_config: TACConfig | None = None
    ) -> SpeechToSpeechProvider:
        if not isinstance(self.model, SpeechToSpeechModel):
            raise TypeError(
                "model must implement SpeechToSpeechModel (connect), got "
                f"{type(self.model).__name__}"
            )
        return SpeechToSpeechProvider(channel, self)


class SpeechToSpeechProvider(MediaStreamsProvider):
    """Bridges calls to the :class:`SpeechToSpeechModel` of its config."""

    provider_id = "speech_to_speech"
    config: SpeechToSpeechProviderConfig

    async def _call_context(
        self, start: StreamStartMessage, session: ConversationSession, per_call: dict[str, Any]
    ) -> CallContext:
        config = {**self.config.session_config, **per_call}
        instructions = config.get("instructions")
        return CallContext(
            start=start,
            session=session,
            session_config=config,
            instructions=instructions if isinstance(instructions, str) else None,
        )

    async def _connect(self, context: CallContext) -> SpeechToSpeechConnection:
        model: SpeechToSpeechModel = self.config.model
        return await model.connect(context)
