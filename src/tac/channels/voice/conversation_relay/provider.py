"""ConversationRelay: TwiML for calls, and one WebSocket per call speaking the relay protocol.

Live calls sit in a per-process registry (:attr:`ConversationRelayProvider.calls`): an entry
is added when ``setup`` arrives and removed when the WebSocket closes, at which point the call's
session ends (``tac.end_session``) in both deployment modes. Nothing else keeps per-call state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pydantic import Field

from tac._errors import TACError
from tac.channels.voice._base import VoiceProvider, VoiceProviderConfig
from tac.channels.voice.conversation_relay._protocol import (
    RelayProtocol,
    RelayProtocolError,
    RelayState,
    RelayStateError,
    UnknownMessage,
)
from tac.channels.voice.conversation_relay.twiml import (
    default_relay_options,
    generate_twiml,
    merge_twiml_options,
)
from tac.core._callbacks import invoke
from tac.core.logging import get_logger
from tac.core.turns import run_turn
from tac.models.session import AuthorInfo, Channel, ConversationSession
from tac.models.voice import (
    CallOptions,
    DTMFMessage,
    ErrorMessage,
    InfoMessage,
    InitiateVoiceConversationOptions,
    InitiateVoiceConversationResult,
    InterruptMessage,
    PromptMessage,
    SetupMessage,
    TwiMLRequest,
    VoiceTwiMLOptions,
    VoiceTwiMLOptionsConversationRelay,
)
from tac.observability import _hooks as _obs

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from tac.channels.voice.channel import VoiceChannel
    from tac.core.config import TACConfig
    from tac.core.tac import TAC

__all__ = [
    "CallNotConnectedError",
    "ConversationRelayProvider",
    "ConversationRelayProviderConfig",
]

logger = get_logger("channels.voice")

_CUSTOMER_TYPES = frozenset({"CUSTOMER"})
_AGENT_TYPES = frozenset({"AGENT", "AI_AGENT"})
_INTERRUPT_WAIT_SECONDS = 5.0
_CLOSE_WAIT_SECONDS = 5.0


class CallNotConnectedError(TACError, LookupError):
    """No live ConversationRelay call for that conversation in this process."""


class ConversationRelayProviderConfig(VoiceProviderConfig):
    """ConversationRelay settings (also importable as ``VoiceChannelConfig``).

    - ``memory_mode``: ``"never"`` (default), ``"once"`` (first utterance) or ``"always"``.
    - ``default_twiml_options``: TwiML settings for every call (a per-call hook can override).
    - ``default_call_options``: Calls API options for every outbound call.
    - ``orchestrator_lookup_timeout``: how long (s) a call waits for its Orchestrator
      conversation before it carries on without one (ConversationRelay-only behaviour).
    """

    default_twiml_options: VoiceTwiMLOptionsConversationRelay | None = None
    default_call_options: CallOptions | None = None
    orchestrator_lookup_timeout: float = Field(default=5.0, ge=0)

    def create_provider(
        self, channel: VoiceChannel, tac_config: TACConfig
    ) -> ConversationRelayProvider:
        return ConversationRelayProvider(channel, self)


class _Call:
    """A live call: its socket, protocol state, session and the turn in progress."""

    __slots__ = (
        "call_sid",
        "conversation_id",
        "degraded",
        "partial_prompt",
        "protocol",
        "ready",
        "session",
        "setup",
        "turn",
        "websocket",
    )

    def __init__(self, websocket: WebSocket, protocol: RelayProtocol, setup: SetupMessage) -> None:
        self.websocket = websocket
        self.protocol = protocol
        self.setup = setup
        self.call_sid = setup.call_sid
        self.conversation_id = setup.call_sid
        self.session: ConversationSession | None = None
        self.ready: asyncio.Task[ConversationSession] | None = None
        self.turn: asyncio.Task[None] | None = None
        self.degraded = False
        self.partial_prompt = ""


class ConversationRelayProvider(VoiceProvider):
    """Serves ConversationRelay calls for a :class:`~tac.channels.voice.VoiceChannel`."""

    provider_id = "conversation_relay"

    def __init__(self, channel: VoiceChannel, config: ConversationRelayProviderConfig) -> None:
        super().__init__(channel)
        self.config = config
        self.calls: dict[str, _Call] = {}
        """Live calls of this process by conversation id and by CallSid (same object)."""
        self._default_twiml: str | None = None
        self._drained = asyncio.Event()
        self._keeper: asyncio.Task[None] | None = None

    @property
    def tac(self) -> TAC:
        return self.channel.tac

    # -- TwiML ---------------------------------------------------------------------------------

    def _default_options(self) -> VoiceTwiMLOptionsConversationRelay:
        return default_relay_options(self.tac.config)

    async def handle_incoming_call(
        self,
        twiml_request: TwiMLRequest | None = None,
        *,
        host_twiml_options: VoiceTwiMLOptions | None = None,
    ) -> str:
        """TwiML for an incoming call: defaults < host options < channel defaults < the hook."""
        if host_twiml_options is not None and not isinstance(
            host_twiml_options, VoiceTwiMLOptionsConversationRelay
        ):
            raise TypeError("host_twiml_options must be VoiceTwiMLOptionsConversationRelay")
        hook = self.channel.inbound_twiml_hook
        if hook is None and host_twiml_options is None:
            if self._default_twiml is None:
                options = merge_twiml_options(
                    self._default_options(), self.config.default_twiml_options
                )
                self._default_twiml = generate_twiml(options=options)
            return self._default_twiml
        custom = None
        if hook is not None:
            custom = await invoke(hook, twiml_request or TwiMLRequest())
            if custom is not None and not isinstance(custom, VoiceTwiMLOptionsConversationRelay):
                raise TypeError(
                    "on_inbound_call_twiml must return VoiceTwiMLOptionsConversationRelay or "
                    f"None, got {type(custom).__name__}"
                )
        options = merge_twiml_options(
            self._default_options(),
            host_twiml_options,
            self.config.default_twiml_options,
            custom,
        )
        return generate_twiml(options=options)

    # -- outbound ------------------------------------------------------------------------------

    async def initiate_outbound_conversation(
        self, options: InitiateVoiceConversationOptions
    ) -> InitiateVoiceConversationResult:
        """Place a call through the Calls API, answered by inline ConversationRelay TwiML."""
        twiml_options = merge_twiml_options(
            self._default_options(), self.config.default_twiml_options, options.twiml_options
        )
        if options.websocket_url:
            twiml_options = merge_twiml_options(
                twiml_options,
                VoiceTwiMLOptionsConversationRelay(websocket_url=options.websocket_url),
            )
        if not twiml_options.websocket_url:
            raise ValueError(
                "no WebSocket URL for the call: set TAC_PUBLIC_BASE_URL or pass websocket_url"
            )
        call = await self.tac.calls_client.create_call(
            options.to,
            self.tac.config.phone_number,
            twiml=generate_twiml(options=twiml_options),
            **self.call_kwargs(self.config.default_call_options, options.call_options),
        )
        logger.info("outbound call placed", call_sid=call.sid)
        return InitiateVoiceConversationResult(call_sid=call.sid)

    # -- the WebSocket -------------------------------------------------------------------------

    async def handle_websocket(self, websocket: WebSocket) -> None:
        """Serve one call: accept, expect ``setup``, dispatch frames until the socket closes."""
        await websocket.accept()
        protocol = RelayProtocol()
        call: _Call | None = None
        try:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                _obs.observer.websocket_closed(message.get("code"))
                return
            try:
                event = protocol.receive(message.get("text") or message.get("bytes") or b"")
            except RelayProtocolError as exc:
                logger.warning("ConversationRelay session refused: %s", exc)
                _obs.observer.websocket_failure("refused")
                await websocket.close(code=exc.close_code, reason=exc.close_reason)
                return
            assert isinstance(event, SetupMessage)
            call = _Call(websocket, protocol, event)
            try:
                await self._open(call)
            except Exception as exc:  # e.g. the session store is down: no session, no call
                _obs.observer.websocket_failure("setup")
                await self._report(call, exc, "setup")
                await websocket.close(code=1011)
                return
            receive = websocket.receive
            dispatch = self._dispatch
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    _obs.observer.websocket_closed(message.get("code"))
                    break
                frame = message.get("text")
                if frame is None:
                    frame = message.get("bytes") or b""
                try:
                    event = protocol.receive(frame)
                except RelayProtocolError as exc:
                    if exc.fatal:
                        logger.warning(
                            "ConversationRelay call closed: %s", exc, call_sid=call.call_sid
                        )
                        await websocket.close(code=exc.close_code, reason=exc.close_reason)
                        break
                    logger.warning(
                        "ConversationRelay frame dropped: %s", exc, call_sid=call.call_sid
                    )
                    _obs.observer.websocket_failure("frame_dropped")
                    continue
                try:
                    await dispatch(call, event)
                except Exception as exc:
                    await self._report(call, exc, type(event).__name__)
        except (RuntimeError, OSError) as exc:  # the socket went away under us
            logger.debug("ConversationRelay socket lost: %s", exc)
            _obs.observer.websocket_failure("lost")
            _obs.observer.websocket_closed(None)
        finally:
            protocol.close()
            if call is not None:
                await self._close(call)

    async def _report(self, call: _Call, exc: Exception, stage: str) -> None:
        await self.tac.trigger_error(
            exc,
            {
                "conversation_id": call.conversation_id,
                "call_sid": call.call_sid,
                "channel": "voice",
                "stage": stage,
            },
        )

    async def _open(self, call: _Call) -> None:
        """``setup`` arrived: register the call and establish its session."""
        self.calls[call.call_sid] = call
        _obs.observer.call_opened()
        if self.tac.is_orchestrator_enabled():
            # found in the background: frames keep flowing; the first turn awaits it
            call.ready = asyncio.get_running_loop().create_task(
                self._establish(call), name=f"relay-setup:{call.call_sid}"
            )
        else:
            await self._establish(call)

    async def _establish(self, call: _Call) -> ConversationSession:
        setup = call.setup
        params = setup.custom_parameters
        conversation_id: str | None = None
        if self.tac.is_orchestrator_enabled():
            conversation_id = params.get("conversationId") or await self._find_conversation(
                call.call_sid
            )
            if conversation_id is None:
                call.degraded = True
                logger.warning(
                    "no Orchestrator conversation for the call in time; "
                    "continuing without one (no memory)",
                    call_sid=call.call_sid,
                )
        session = ConversationSession(
            conversation_id=conversation_id or call.call_sid,
            channel=Channel.VOICE,
            call_sid=call.call_sid,
            profile_id=params.get("profileId"),
            author_info=AuthorInfo(
                address=setup.caller_address, participant_id=params.get("customerParticipantId")
            ),
            custom_parameters=dict(params),
            metadata={"direction": setup.direction, "channel_id": call.call_sid},
        )
        if params.get("aiAgentParticipantId"):
            session.ai_agent_info = AuthorInfo(participant_id=params["aiAgentParticipantId"])
        if conversation_id is not None:
            await self._add_participants(session)
        stored, _ = await self.tac.start_session(session)
        call.conversation_id = stored.conversation_id
        call.session = stored
        await self.tac.live_calls.register(
            *{call.call_sid, stored.conversation_id},
            ttl_seconds=self.tac.config.session_ttl_seconds,
        )
        if stored.conversation_id != call.call_sid:
            self.calls[stored.conversation_id] = call
            await self.tac.link_call(call.call_sid, stored.conversation_id)
        await self.tac.trigger_setup(stored)
        await self.tac.save_session(stored)  # what on_setup changed, for every instance
        return stored

    async def _find_conversation(self, call_sid: str) -> str | None:
        """The ACTIVE Orchestrator conversation of ``call_sid``, polled with a bounded backoff."""
        client = self.tac.conversation_orchestrator_client
        assert client is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.orchestrator_lookup_timeout
        delay = 0.05
        while True:
            try:
                found = await client.list_conversations(
                    channel_id=call_sid, status="ACTIVE", max_pages=1
                )
            except Exception as exc:
                logger.warning("conversation lookup failed: %s", exc, call_sid=call_sid)
                found = []
            if found:
                if len(found) > 1:
                    logger.warning(
                        "several ACTIVE conversations for one call; using the newest",
                        call_sid=call_sid,
                    )
                    found.sort(key=lambda c: str(c.created_at or ""), reverse=True)
                return found[0].id
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 1.0)

    async def _add_participants(self, session: ConversationSession) -> None:
        """Customer (profile, participant id) and agent participant, best effort."""
        client = self.tac.conversation_orchestrator_client
        if client is None:
            return
        try:
            participants = await client.list_participants(session.conversation_id)
        except Exception as exc:
            logger.warning(
                "participants unavailable: %s", exc, conversation_id=session.conversation_id
            )
            return
        for participant in participants:
            kind = (participant.type or "").upper()
            voice = next(
                (a.address for a in participant.addresses if a.channel.upper() == "VOICE"), None
            )
            if kind in _CUSTOMER_TYPES:
                session.profile_id = session.profile_id or participant.profile_id
                info = session.author_info or AuthorInfo()
                info.participant_id = info.participant_id or participant.id
                info.address = info.address or voice
                session.author_info = info
            elif kind in _AGENT_TYPES and session.ai_agent_info is None:
                session.ai_agent_info = AuthorInfo(address=voice, participant_id=participant.id)

    async def _ready(self, call: _Call) -> ConversationSession:
        if call.session is not None:
            return call.session
        assert call.ready is not None
        return await asyncio.shield(call.ready)

    async def _dispatch(self, call: _Call, event: Any) -> None:
        if isinstance(event, PromptMessage):
            if not event.last:
                call.partial_prompt = event.voice_prompt
                return
            call.partial_prompt = ""
            if not event.voice_prompt.strip():
                return
            previous = call.turn
            if previous is not None and not previous.done():
                previous.cancel()
            call.turn = asyncio.get_running_loop().create_task(self._turn(call, event))
        elif isinstance(event, InterruptMessage):
            await self._interrupt(call, event)
        elif isinstance(event, DTMFMessage):
            session = await self._ready(call)
            await self.tac.trigger_dtmf(session, event.digit)
        elif isinstance(event, ErrorMessage):
            _obs.observer.websocket_failure("relay_error")
            logger.warning(
                "ConversationRelay reported an error: %s", event.description, call_sid=call.call_sid
            )
        elif isinstance(event, InfoMessage):
            logger.debug("ConversationRelay info %s=%s", event.name, event.value)
        elif isinstance(event, UnknownMessage):
            logger.debug("ConversationRelay message ignored: %s", event.type)

    async def _interrupt(self, call: _Call, event: InterruptMessage) -> None:
        turn = call.turn
        if turn is not None and not turn.done():
            turn.cancel()
            await asyncio.wait({turn}, timeout=_INTERRUPT_WAIT_SECONDS)
        if call.protocol.reply_open:
            with contextlib.suppress(CallNotConnectedError):
                await self._send(call, call.protocol.text("", last=True))
        _obs.observer.interrupt("voice")
        session = await self._ready(call)
        await self.tac.trigger_interrupt(session, event)

    async def _turn(self, call: _Call, prompt: PromptMessage) -> None:
        """One utterance through the turn engine; the reply is spoken as ``text`` frames."""
        context: dict[str, Any] = {
            "conversation_id": call.conversation_id,
            "call_sid": call.call_sid,
            "channel": "voice",
        }
        observer = _obs.observer
        turn = observer.turn_begin("voice", call.conversation_id)
        try:
            try:
                with observer.stage("tac.session.load"):
                    session = await self._ready(call)
            except Exception as exc:
                await self.tac.trigger_error(exc, {**context, "callback": "on_message_ready"})
                return
            _obs.bind_log_context(session.conversation_id, "voice")
            if turn is not None:
                turn.conversation_id = session.conversation_id
            await run_turn(
                self.tac,
                session,
                prompt.voice_prompt,
                mode=self.config.memory_mode,
                sink=_RelaySink(self, call),
                context=context,
                degraded=call.degraded,
            )
        except asyncio.CancelledError:
            if turn is not None and turn.outcome != "replied":
                turn.outcome = "interrupted"
            raise
        finally:
            observer.turn_end(turn)

    # -- sending -------------------------------------------------------------------------------

    async def _send(self, call: _Call, frame: str) -> None:
        try:
            await call.websocket.send_text(frame)
        except Exception as exc:  # closed under us: the caller hung up
            raise CallNotConnectedError(f"call {call.call_sid} is no longer connected") from exc

    def _live(self, conversation_id: str) -> _Call:
        call = self.calls.get(conversation_id)
        if call is None or call.protocol.state is not RelayState.OPEN:
            raise CallNotConnectedError(
                f"no live ConversationRelay call for conversation {conversation_id!r}"
            )
        return call

    async def send_reply(self, call: _Call, response: str | AsyncIterator[str]) -> None:
        """Speak a str (one final ``text``) or stream an async iterator (tokens, then final).

        A pending handoff is sent as ``end`` right after the final ``text``.
        """
        protocol = call.protocol
        observer = _obs.observer
        if isinstance(response, str):
            await self._send(call, protocol.text(response, last=True))
            observer.reply_sent()
        elif hasattr(response, "__aiter__"):
            iterator = response.__aiter__()
            try:
                async for chunk in iterator:
                    if not isinstance(chunk, str):
                        raise TypeError(
                            f"streamed replies must yield str, got {type(chunk).__name__}"
                        )
                    if chunk:
                        await self._send(call, protocol.text(chunk, last=False))
                        observer.reply_sent(last=False)
            finally:
                close = getattr(iterator, "aclose", None)
                if close is not None:
                    await close()
            await self._send(call, protocol.text("", last=True))
            observer.reply_sent()
        else:
            raise TypeError(
                f"response must be a str or an async iterator of str, got {type(response).__name__}"
            )
        await self._send_pending_handoff(call)

    async def _send_pending_handoff(self, call: _Call) -> None:
        session = call.session
        handoff: str | None = None
        if session is not None and session.pending_handoff_data is not None:
            handoff = session.pending_handoff_data.handoff_data
            session.pending_handoff_data = None
        if handoff is None:
            handoff = await self.tac.pop_pending_handoff(call.conversation_id)
        if handoff is not None:
            logger.info("handing the call off", call_sid=call.call_sid)
            await self._send(call, call.protocol.end(handoff))

    async def send_response(self, conversation_id: str, response: Any) -> None:
        await self.send_reply(self._live(conversation_id), response)

    async def send_frame(self, conversation_id: str, build: Any, *args: Any, **kwargs: Any) -> None:
        """Build a frame with the call's protocol (``build(protocol, ...)``) and send it."""
        call = self._live(conversation_id)
        await self._send(call, build(call.protocol, *args, **kwargs))

    # -- end of a call -------------------------------------------------------------------------

    async def _close(self, call: _Call) -> None:
        """The socket closed: stop its work, drop it from the registry, end its session."""
        for task in (call.turn, call.ready):
            if task is not None and not task.done():
                task.cancel()
        for task in (call.turn, call.ready):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if call.session is not None:
            try:
                await self.tac.live_calls.unregister(*{call.call_sid, call.conversation_id})
                await self.tac.end_session(call.conversation_id, reason="call ended")
            except Exception as exc:
                await self.tac.trigger_error(
                    exc, {"conversation_id": call.conversation_id, "channel": "voice"}
                )
        _obs.observer.call_closed()
        # dropped last, so an empty registry means every call's end has been handled
        if self.calls.get(call.call_sid) is call:
            del self.calls[call.call_sid]
        if self.calls.get(call.conversation_id) is call:
            del self.calls[call.conversation_id]
        if not self.calls:
            self._drained.set()

    async def start(self) -> None:
        """Take the commands other instances send for calls live here (a shared store), and
        keep live calls' sessions from idling out (a quiet call is still a live one)."""
        await self.tac.live_calls.start(self._command)
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.get_running_loop().create_task(
                self._keep_sessions(), name="relay-session-keeper"
            )

    async def _keep_sessions(self) -> None:
        interval = min(max(self.tac.config.session_ttl_seconds / 3, 0.05), 60.0)
        while True:
            await asyncio.sleep(interval)
            for call in list({id(c): c for c in self.calls.values()}.values()):
                if call.session is None:
                    continue
                try:
                    await self.tac.save_session(call.session)
                except Exception as exc:
                    logger.warning("live call's session not refreshed: %s", exc)

    async def _command(self, command: dict[str, Any]) -> None:
        """Carry out another instance's request on a call live here (``hang_up``, ``play``…)."""
        call_id = str(command.get("call_id", ""))
        if command.get("op") == "reply":
            await self.send_response(call_id, str(command.get("text", "")))
            return
        build = _FRAMES.get(str(command.get("frame")))
        if build is None:
            return
        await self.send_frame(call_id, build, *command.get("args", ()), **command.get("kwargs", {}))

    async def control(self, conversation_id: str, frame: str, *args: Any, **kwargs: Any) -> None:
        """Send a control frame (``end``, ``play``, ``sendDigits``, ``language``) to a live
        call, on this instance or, through the shared store, on the instance holding it."""
        try:
            await self.send_frame(conversation_id, _FRAMES[frame], *args, **kwargs)
            return
        except CallNotConnectedError:
            if conversation_id in self.calls:
                raise
            command = {"op": "frame", "frame": frame, "args": list(args), "kwargs": kwargs}
            if not await self.tac.live_calls.send(conversation_id, command):
                raise

    async def speak(self, conversation_id: str, response: Any) -> None:
        """Speak a reply in a live call, wherever it is live (a str, or a local stream)."""
        try:
            await self.send_response(conversation_id, response)
        except CallNotConnectedError:
            if conversation_id in self.calls or not isinstance(response, str):
                raise
            command = {"op": "reply", "text": response}
            if not await self.tac.live_calls.send(conversation_id, command):
                raise

    async def live_anywhere(self, call_id: str) -> bool:
        """Whether the call (conversation id or CallSid) is live here or on another instance."""
        if call_id in self.calls:
            return True
        return await self.tac.live_calls.elsewhere(call_id)

    async def aclose(self) -> None:
        """Close every live call's socket (server shutdown); their sessions end as they close."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None
        self._drained.clear()
        for call in list({id(c): c for c in self.calls.values()}.values()):
            with contextlib.suppress(Exception):
                await call.websocket.close(code=1001)
        if self.calls:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._drained.wait(), _CLOSE_WAIT_SECONDS)


class _RelaySink:
    """Voice replies: ``text`` frames on the call's WebSocket (tokens as they stream)."""

    streams = True

    def __init__(self, provider: ConversationRelayProvider, call: _Call) -> None:
        self._provider = provider
        self._call = call

    async def deliver(self, reply: str | AsyncIterator[str]) -> None:
        await self._provider.send_reply(self._call, reply)

    async def fail(self) -> None:
        call = self._call
        if call.protocol.reply_open:
            with contextlib.suppress(CallNotConnectedError, RelayStateError):
                await self._provider._send(call, call.protocol.text("", last=True))

    def quiet(self, exc: BaseException) -> bool:
        # the caller hung up, or the session was ended (``end``) mid-reply
        return isinstance(exc, CallNotConnectedError | RelayStateError)


_FRAMES: dict[str, Any] = {
    "end": RelayProtocol.end,
    "play": RelayProtocol.play,
    "sendDigits": RelayProtocol.send_digits,
    "language": RelayProtocol.language,
}
