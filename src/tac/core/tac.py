"""The :class:`TAC` core: configuration, Twilio clients, sessions, memory and callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import ValidationError

from tac.context import (
    CallsClient,
    ConversationClient,
    KnowledgeClient,
    MemoryClient,
    StudioClient,
    TwilioHTTP,
)
from tac.core._callbacks import invoke
from tac.core.config import TACConfig
from tac.core.errors import TACConfigError
from tac.core.logging import get_logger, setup_logging
from tac.core.partner import PartnerConnector
from tac.models._base import first_error
from tac.models.address import profile_lookup_key, recall_query
from tac.models.memory import MemoryMode, MemoryRetrievalRequest
from tac.models.session import Channel, ConversationSession
from tac.models.tac import TACMemoryResponse
from tac.observability import _hooks as _obs
from tac.state import SessionStore, create_session_store
from tac.state.inbound import InboundLog
from tac.state.live_calls import LiveCalls

if TYPE_CHECKING:
    from tac.intelligence import OperatorProcessingResult, OperatorResultProcessor

__all__ = ["TAC", "profile_lookup_key"]

F = TypeVar("F", bound=Callable[..., Any])

_FALLBACK_HISTORY = 50
_CLOSED_MARK_SECONDS = 3600.0  # how long a first turn may run and still see CLOSED
_SWEEP_INTERVAL_SECONDS = 30.0


class TAC:
    """Twilio Agent Connect: the hub your channels, server and agent share.

    ``TAC()`` does no network I/O: clients connect on first use, and the memory store id is read
    from the Conversation Orchestrator configuration the first time memory is needed. One pooled
    HTTP client serves every Twilio API; :meth:`aclose` closes it.
    """

    def __init__(
        self,
        config: TACConfig | Mapping[str, Any] | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        session_store: SessionStore | None = None,
    ) -> None:
        if config is None:
            config = TACConfig.from_env()
        elif isinstance(config, Mapping):
            try:
                config = TACConfig.model_validate(dict(config))
            except ValidationError as exc:
                field, message = first_error(exc, "config")
                raise TACConfigError(field, message) from None
        self.config: TACConfig = config
        setup_logging(config.log_level, config.log_format)
        self.logger = get_logger("core")
        if not config.validate_signatures:
            self.logger.warning(
                "Twilio signature validation is OFF (TWILIO_VALIDATE_SIGNATURES=false); "
                "anyone can post to your webhooks"
            )
        self.http = TwilioHTTP(
            api_key=config.api_key,
            api_secret=config.api_secret,
            account_sid=config.account_sid,
            region=config.region,
            api_base_url=config.api_base_url,
            client=http_client,
            transport=transport,
        )
        self.session_store: SessionStore = session_store or create_session_store(config.state_url)
        self.conversation_orchestrator_client: ConversationClient | None = None
        self.conversation_memory_client: MemoryClient | None = None
        if config.conversation_configuration_id:
            self.conversation_orchestrator_client = ConversationClient(
                configuration_id=config.conversation_configuration_id, http=self.http
            )
            self.conversation_memory_client = MemoryClient(
                http=self.http, resolve_store_id=self._resolve_memory_store_id
            )
        self.knowledge_client: KnowledgeClient | None = (
            KnowledgeClient(http=self.http) if config.knowledge_base_id else None
        )
        self.studio_client = StudioClient(http=self.http)
        self.calls_client = CallsClient(http=self.http, account_sid=config.account_sid)
        self.ci_processor: OperatorResultProcessor | None = None
        ci_config = config.conversation_intelligence_config
        if ci_config is not None and self.conversation_memory_client is None:
            self.logger.warning(
                "CONVERSATION_INTELLIGENCE_CONFIGURATION_ID is set but Conversation "
                "Intelligence is off: it writes to Conversation Memory, which needs "
                "TWILIO_CONVERSATION_CONFIGURATION_ID"
            )
        elif ci_config is not None and self.conversation_memory_client is not None:
            from tac.intelligence import OperatorResultProcessor

            self.ci_processor = OperatorResultProcessor(
                self.conversation_memory_client, ci_config, session_store=self.session_store
            )
        self._callbacks: dict[str, Callable[..., Any]] = {}
        self._end_listeners: list[Callable[[ConversationSession], Any]] = []
        self._sweeper: asyncio.Task[None] | None = None
        self._warned_no_callback = False

    # -- modes ---------------------------------------------------------------------------

    def is_orchestrator_enabled(self) -> bool:
        """True in full Orchestrator mode; False in ConversationRelay-only mode."""
        return self.conversation_orchestrator_client is not None

    async def memory_store_id(self) -> str | None:
        """The Conversation Memory store linked to the Orchestrator configuration (cached)."""
        if self.conversation_memory_client is None:
            return None
        return await self.conversation_memory_client.get_store_id()

    async def _resolve_memory_store_id(self) -> str:
        assert self.conversation_orchestrator_client is not None
        configuration = await self.conversation_orchestrator_client.get_configuration()
        if not configuration.memory_store_id:
            raise TACConfigError(
                "TWILIO_CONVERSATION_CONFIGURATION_ID",
                f"configuration {configuration.id} has no memory store linked",
            )
        return configuration.memory_store_id

    async def process_cintel_event(self, payload: Mapping[str, Any]) -> OperatorProcessingResult:
        """Write a Conversation Intelligence webhook's results to Memory.

        Raises:
            ValueError: Conversation Intelligence is not configured, or the payload is not a
                rule-execution event (``tac.intelligence.InvalidOperatorEventError``).
        """
        if self.ci_processor is None:
            raise ValueError(
                "Conversation Intelligence is not configured: set "
                "CONVERSATION_INTELLIGENCE_CONFIGURATION_ID"
            )
        return await self.ci_processor.process_event(payload)

    # -- callbacks -----------------------------------------------------------------------

    def _register(self, name: str, callback: F) -> F:
        if not callable(callback):
            raise TypeError(f"on_{name} needs a callable, got {type(callback).__name__}")
        self._callbacks[name] = callback
        return callback

    def on_message_ready(self, callback: F) -> F:
        """``callback(message, session, memory)``; return the reply (str) or ``None``."""
        return self._register("message_ready", callback)

    def on_interrupt(self, callback: F) -> F:
        """``callback(session, interrupt)`` when a caller talks over the agent (voice)."""
        return self._register("interrupt", callback)

    def on_dtmf(self, callback: F) -> F:
        """``callback(session, digit)`` when a caller presses a key (voice)."""
        return self._register("dtmf", callback)

    def on_setup(self, callback: F) -> F:
        """``callback(session)`` after a call's ``setup`` (custom parameters on the session)."""
        return self._register("setup", callback)

    def on_conversation_ended(self, callback: F) -> F:
        """``callback(session)`` exactly once when a conversation ends."""
        return self._register("conversation_ended", callback)

    def on_delivery_status(self, callback: F) -> F:
        """``callback(session, status)`` when a message is not delivered (``status`` is a
        :class:`~tac.models.DeliveryStatus`: FAILED or UNDELIVERED)."""
        return self._register("delivery_status", callback)

    def on_error(self, callback: F) -> F:
        """``callback(exc, context)`` for errors outside the agent's reach (never raises)."""
        return self._register("error", callback)

    def has_callback(self, name: str) -> bool:
        return name in self._callbacks

    async def trigger_message_ready(
        self, message: str, session: ConversationSession, memory: TACMemoryResponse | None
    ) -> str | AsyncIterator[str] | None:
        """Run ``on_message_ready``; its reply (a str, an async iterator for voice, or None)."""
        callback = self._callbacks.get("message_ready")
        if callback is None:
            if not self._warned_no_callback:
                self._warned_no_callback = True
                self.logger.warning("a message arrived but no on_message_ready is registered")
            return None
        with _obs.observer.callback_started():
            result = await invoke(callback, message, session, memory)
        if result is None or isinstance(result, str) or hasattr(result, "__aiter__"):
            return result  # type: ignore[no-any-return]
        raise TypeError(f"on_message_ready must return str or None, got {type(result).__name__}")

    async def trigger_interrupt(self, session: ConversationSession, interrupt: Any) -> None:
        await self._fire("interrupt", session, interrupt)

    async def trigger_dtmf(self, session: ConversationSession, digit: str) -> None:
        await self._fire("dtmf", session, digit)

    async def trigger_setup(self, session: ConversationSession) -> None:
        await self._fire("setup", session)

    def add_session_end_listener(self, listener: Callable[[ConversationSession], Any]) -> None:
        """Also run ``listener(session)`` (sync or async) when a session ends, before
        ``on_conversation_ended``; for components that own per-conversation state."""
        self._end_listeners.append(listener)

    async def trigger_conversation_ended(self, session: ConversationSession) -> None:
        for listener in self._end_listeners:
            await self._fire_listener(listener, session)
        await self._fire("conversation_ended", session)

    async def trigger_delivery_status(self, session: ConversationSession, status: Any) -> None:
        await self._fire("delivery_status", session, status)

    async def _fire_listener(self, listener: Callable[..., Any], session: Any) -> None:
        try:
            await invoke(listener, session)
        except Exception as exc:
            await self.trigger_error(exc, {"conversation_id": session.conversation_id})

    async def trigger_error(self, exc: BaseException, context: dict[str, Any]) -> None:
        """Hand an error to ``on_error`` (or log it); never raises."""
        _obs.observer.error(context)
        callback = self._callbacks.get("error")
        if callback is None:
            self.logger.error(
                "unhandled error: %s", exc, exc_info=(type(exc), exc, exc.__traceback__), **context
            )
            return
        try:
            await invoke(callback, exc, context)
        except Exception as callback_exc:
            self.logger.exception("on_error raised: %s", callback_exc, **context)

    async def _fire(self, name: str, session: ConversationSession, *args: Any) -> None:
        callback = self._callbacks.get(name)
        if callback is None:
            return
        try:
            await invoke(callback, session, *args)
        except Exception as exc:
            await self.trigger_error(
                exc,
                {
                    "conversation_id": session.conversation_id,
                    "channel": session.channel,
                    "callback": f"on_{name}",
                },
            )

    # -- sessions ------------------------------------------------------------------------

    async def get_session(self, conversation_id: str) -> ConversationSession | None:
        with _obs.observer.stage("tac.session.load"):
            return await self.session_store.get_session(conversation_id)

    async def start_session(self, session: ConversationSession) -> tuple[ConversationSession, bool]:
        """Store ``session`` unless one exists; return the stored one and whether it is new."""
        stored, created = await self.session_store.create_session(
            session, self.config.session_ttl_seconds
        )
        if created:
            _obs.observer.session_started(stored.channel)
        return stored, created

    async def save_session(self, session: ConversationSession) -> bool:
        """Persist changes to a session and extend its idle life.

        ``False`` when the session has already ended (it is not brought back).
        """
        return await self.session_store.save_session(session, self.config.session_ttl_seconds)

    async def end_session(self, conversation_id: str, *, reason: str = "ended") -> bool:
        """End a session; ``on_conversation_ended`` fires here, once across all instances."""
        session = await self.session_store.end_session(conversation_id)
        if session is None:
            return False
        self.logger.debug("session ended", conversation_id=conversation_id, reason=reason)
        _obs.observer.session_ended(session.channel, reason)
        await self.trigger_conversation_ended(session)
        return True

    async def close_conversation(self, conversation_id: str) -> bool:
        """The conversation CLOSED: end its session, or (none yet: its first turn is still
        running) leave a mark so that turn ends it right after (:meth:`end_if_closed`)."""
        session = await self.session_store.close_conversation(
            conversation_id, min(self.config.session_ttl_seconds, _CLOSED_MARK_SECONDS)
        )
        if session is None:
            return False
        self.logger.debug("session ended", conversation_id=conversation_id, reason="closed")
        await self.trigger_conversation_ended(session)
        return True

    async def end_if_closed(self, conversation_id: str) -> bool:
        """After a conversation's first turn: end it if CLOSED arrived during that turn."""
        if not await self.session_store.was_closed(conversation_id):
            return False
        return await self.end_session(conversation_id, reason="closed")

    async def discard_session(self, conversation_id: str) -> None:
        """Remove a session without ``on_conversation_ended`` (it never really started)."""
        await self.session_store.end_session(conversation_id)

    @property
    def live_calls(self) -> LiveCalls:
        """Which instance holds each live call (with a shared store), and commands to it."""
        return self.session_store.live_calls

    @property
    def inbound_log(self) -> InboundLog:
        """Claims (and, with Redis, the events) of accepted webhooks."""
        return self.session_store.inbound

    async def store_reachable(self) -> None:
        """Raise if the session store cannot be reached (a shared store is pinged)."""
        ping = getattr(self.session_store, "ping", None)
        if ping is not None:
            await ping()

    async def session_count(self) -> int:
        """How many sessions are stored (all instances, with a shared store)."""
        return await self.session_store.session_count()

    # -- calls ---------------------------------------------------------------------------

    async def link_call(self, call_sid: str, conversation_id: str) -> None:
        """Remember that ``call_sid`` belongs to ``conversation_id`` (for its callbacks)."""
        await self.session_store.link_call(
            call_sid, conversation_id, self.config.session_ttl_seconds
        )

    async def conversation_for_call(self, call_sid: str) -> str | None:
        return await self.session_store.conversation_for_call(call_sid)

    async def set_pending_handoff(self, conversation_id: str, handoff_data: str) -> None:
        """Keep a voice handoff for the call's instance to send after the current reply."""
        await self.session_store.set_pending_handoff(
            conversation_id, handoff_data, self.config.session_ttl_seconds
        )

    async def pop_pending_handoff(self, conversation_id: str) -> str | None:
        return await self.session_store.pop_pending_handoff(conversation_id)

    async def sweep_expired_sessions(self) -> int:
        """End sessions idle past ``TAC_SESSION_TTL_SECONDS`` (the backstop end of life)."""
        ended = 0
        while True:
            expired = await self.session_store.pop_expired_sessions(limit=100)
            for session in expired:
                self.logger.info(
                    "session idle past its TTL", conversation_id=session.conversation_id
                )
                _obs.observer.session_ended(session.channel, "idle")
                await self.trigger_conversation_ended(session)
            ended += len(expired)
            if len(expired) < 100:
                break
        await self.session_store.purge_expired()
        return ended

    async def start(self) -> None:
        """Start background housekeeping (the idle-session sweeper). Idempotent."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="tac-session-sweeper")

    async def _sweep_forever(self) -> None:
        interval = min(_SWEEP_INTERVAL_SECONDS, max(self.config.session_ttl_seconds / 4, 0.05))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep_expired_sessions()
            except Exception as exc:  # keep sweeping whatever one round met
                self.logger.warning("session sweep failed: %s", exc)

    async def aclose(self) -> None:
        """Stop housekeeping and close the HTTP client and the session store."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.http.aclose()
        await self.session_store.aclose()

    async def __aenter__(self) -> TAC:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- memory --------------------------------------------------------------------------

    async def memory_for_turn(
        self, session: ConversationSession, mode: MemoryMode, message: str
    ) -> TACMemoryResponse | None:
        """The memory argument for one turn under ``mode`` (``"never"`` → ``None``)."""
        if mode == "never":
            return None
        with _obs.observer.stage("tac.memory", **{"tac.memory.mode": mode}):
            if mode == "always":
                return await self.retrieve_memory(
                    session, query=message, conversation_id=session.conversation_id
                )
            cached = await self.session_store.get_cached_memory(session.conversation_id)
            if cached is not None:
                return TACMemoryResponse.from_cache(cached)
            memory = await self.retrieve_memory(session)
            await self.session_store.set_cached_memory(
                session.conversation_id, memory.to_cache(), self.config.session_ttl_seconds
            )
            return memory

    async def invalidate_memory_cache(self, conversation_id: str) -> None:
        """Forget the ``once`` cache (after INACTIVE) so the next turn fetches again."""
        await self.session_store.clear_cached_memory(conversation_id)

    async def retrieve_memory(
        self,
        conversation_context: ConversationSession,
        query: str | None = None,
        conversation_id: str | None = None,
    ) -> TACMemoryResponse:
        """Memory for a session: Conversation Memory first, Orchestrator history as fallback.

        The profile is fetched concurrently with Recall and stored on the session. Never raises:
        an outage logs a warning and falls back; ConversationRelay-only mode gives an empty
        response.
        """
        session = conversation_context
        if self.conversation_orchestrator_client is None:
            return TACMemoryResponse.empty()
        memory_client = self.conversation_memory_client
        profile_id: str | None = None
        if memory_client is not None:
            try:
                profile_id = await self._ensure_profile_id(session)
            except Exception as exc:
                self._memory_warning("profile lookup failed", exc, session)
        if memory_client is None or profile_id is None:
            return await self._orchestrator_history(session)

        memory_config = self.config.memory_config
        request = MemoryRetrievalRequest(
            conversation_id=conversation_id,
            query=recall_query(query),
            observations_limit=memory_config.observations_limit,
            summaries_limit=memory_config.summaries_limit,
            communications_limit=memory_config.communications_limit,
            relevance_threshold=memory_config.relevance_threshold,
        )
        started = time.perf_counter()
        recall_result, profile_result = await asyncio.gather(
            memory_client.retrieve_memory(profile_id, request),
            memory_client.get_profile(profile_id, trait_groups=memory_config.trait_groups),
            return_exceptions=True,
        )
        _obs.observer.memory(
            "memory_api",
            time.perf_counter() - started,
            not isinstance(recall_result, BaseException),
        )
        if isinstance(profile_result, BaseException):
            if not isinstance(profile_result, Exception):
                raise profile_result
            self._memory_warning("profile fetch failed", profile_result, session)
        else:
            session.profile = profile_result
        if isinstance(recall_result, BaseException):
            if not isinstance(recall_result, Exception):
                raise recall_result
            self._memory_warning(
                "Memory recall failed; using Orchestrator history", recall_result, session
            )
            return await self._orchestrator_history(session)
        return TACMemoryResponse(recall_result)

    async def _ensure_profile_id(self, session: ConversationSession) -> str | None:
        if session.profile_id:
            return session.profile_id
        address = session.author_info.address if session.author_info else None
        session.profile_id = await self.find_profile(session.channel, address)
        return session.profile_id

    async def find_profile(
        self, channel: Channel | str, address: str | None, *, create: bool = False
    ) -> str | None:
        """The Memory profile of the customer at ``address`` (looked up by phone or email).

        ``create``: make one for a phone number nobody has yet. ``None`` without Memory, for
        an address that cannot be looked up (chat identities), or when nothing is found.
        """
        memory = self.conversation_memory_client
        lookup = profile_lookup_key(channel, address)
        if memory is None or lookup is None:
            return None
        id_type, value = lookup
        found = await memory.lookup_profile(id_type, value)
        if found:
            return found[0]
        if not create or id_type != "phone":
            return None
        settings = self.config.memory_config
        return await memory.create_profile(
            {settings.phone_trait_group: {settings.phone_trait_field: value}}
        )

    async def _orchestrator_history(self, session: ConversationSession) -> TACMemoryResponse:
        client = self.conversation_orchestrator_client
        assert client is not None
        started = time.perf_counter()
        try:
            communications = await client.list_communications(
                session.conversation_id, page_size=_FALLBACK_HISTORY, limit=_FALLBACK_HISTORY
            )
        except Exception as exc:
            _obs.observer.memory("fallback", time.perf_counter() - started, False)
            self._memory_warning("Orchestrator history unavailable", exc, session)
            return TACMemoryResponse.empty()
        _obs.observer.memory("fallback", time.perf_counter() - started, True)
        return TACMemoryResponse(communications, customer=session.author_info)

    def _memory_warning(self, what: str, exc: BaseException, session: ConversationSession) -> None:
        self.logger.warning(
            "%s: %s",
            what,
            exc,
            conversation_id=session.conversation_id,
            channel=str(session.channel),
        )

    # -- partner connectors ------------------------------------------------------------------

    def register_partner_connector(self, connector: PartnerConnector, package_version: str) -> None:
        """Identify a connector package in the User-Agent of every Twilio request."""
        self.http.user_agent_suffix = (
            f"{connector.package_name}/{package_version} ({connector.connector_name})"
        )
