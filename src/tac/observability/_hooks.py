"""The hooks opentac's hot path calls: a module-level observer that does nothing by default.

Call sites read :data:`observer` at call time (``_hooks.observer.webhook("answered")``), so
:func:`install` swaps in a live one at startup and a disabled process pays one no-op method call
per hook. Nothing here imports ``prometheus_client`` or ``opentelemetry``.
"""

from __future__ import annotations

from contextvars import ContextVar
from types import TracebackType
from typing import Any

__all__ = [
    "NULL",
    "Observer",
    "Turn",
    "bind_log_context",
    "current_turn",
    "install",
    "log_context",
    "observer",
]


class _Null:
    """A context manager doing nothing (one shared instance)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


NULL = _Null()


class Turn:
    """One turn in progress: when it started, its span, and where the reply stands."""

    __slots__ = (
        "channel",
        "context",
        "conversation_id",
        "first_token",
        "outcome",
        "recorder",
        "span",
        "started",
    )

    def __init__(
        self, channel: str, started: float, span: Any = None, conversation_id: str | None = None
    ) -> None:
        self.channel = channel
        self.conversation_id = conversation_id
        self.started = started
        self.span = span
        self.first_token: float | None = None
        self.outcome = "no_reply"
        self.context: Any = None  # the span in an OpenTelemetry context, while it records
        self.recorder: Any = None  # while it records, what records its children without the SDK


_TURN: ContextVar[Turn | None] = ContextVar("tac_turn", default=None)


def current_turn() -> Turn | None:
    """The turn the running task belongs to (only while observability is on)."""
    return _TURN.get()


class Observer:
    """The disabled observer: every hook is a no-op. Live observers override the hooks."""

    metrics: Any = None
    tracer: Any = None

    # -- turns ---------------------------------------------------------------------------------

    def turn_begin(self, channel: str, conversation_id: str | None = None) -> Turn | None:
        """A turn starts (webhook received, or a caller's prompt): the current task's turn."""
        return None

    def turn_end(self, turn: Turn | None, outcome: str | None = None) -> None:
        """The turn is over (``outcome``: replied, no_reply, error, duplicate, cancelled)."""

    def stage(self, name: str, **attributes: Any) -> Any:
        """A context manager around one stage of the current turn (a child span)."""
        return NULL

    def callback_started(self) -> Any:
        """``on_message_ready`` is about to run: a context manager around it."""
        return NULL

    def reply_sent(self, *, last: bool = True) -> None:
        """A reply (or, for voice, a token of it: ``last=False``) went out for the current turn."""

    # -- the server ----------------------------------------------------------------------------

    def webhook(self, outcome: str) -> None:
        """A webhook was answered: answered, duplicate, ignored, forged, malformed, too_large…"""

    def websocket_closed(self, code: int | None) -> None:
        """A voice WebSocket closed with ``code`` (``None``: the socket was lost)."""

    def websocket_failure(self, reason: str) -> None:
        """A voice WebSocket failed: refused, setup, lost, frame_dropped, relay_error."""

    # -- sessions, calls, events ---------------------------------------------------------------

    def session_started(self, channel: str) -> None:
        """A session was created (counted once, on the instance that created it)."""

    def session_ended(self, channel: str, reason: str) -> None:
        """A session ended (counted once, on the instance that ended it)."""

    def call_opened(self) -> None:
        """A voice call's WebSocket was set up on this instance."""

    def call_closed(self) -> None:
        """A voice call's WebSocket closed on this instance."""

    def interrupt(self, channel: str) -> None:
        """A caller talked over the agent."""

    def error(self, context: dict[str, Any]) -> None:
        """An error reached ``on_error`` (``reply_uncertain`` counted when set)."""

    def delivery_status(self, channel: str, status: str) -> None:
        """A message delivery status or a call status arrived."""

    def inbound_takeover(self) -> None:
        """Durable inbound: this instance took over an event whose owner's lease expired."""

    def lease_expired(self) -> None:
        """Durable inbound: an event's lease expired before its turn was done."""

    # -- memory and Twilio ---------------------------------------------------------------------

    def memory(self, source: str, seconds: float, ok: bool) -> None:
        """One memory retrieval from ``source`` (memory_api, fallback) took ``seconds``."""

    def twilio_request(
        self, product: str, method: str, path: str, url: str, headers: dict[str, str]
    ) -> Any:
        """A Twilio API request is about to be sent; ``None`` or a probe with ``done``/``failed``.

        A live observer may add W3C trace context (``traceparent``) to ``headers``.
        """
        return None

    # -- logs ------------------------------------------------------------------------------

    def log_ids(self) -> tuple[str, str] | None:
        """``(trace_id, span_id)`` of the current span, hex, for log records."""
        return None


observer: Observer = Observer()
"""The process's observer (disabled until :func:`install`)."""


def install(new: Observer) -> Observer:
    """Make ``new`` the process's observer; returns the previous one."""
    global observer
    previous, observer = observer, new
    return previous


_LOG_CONTEXT: ContextVar[tuple[str, str] | None] = ContextVar("tac_log_context", default=None)


def bind_log_context(conversation_id: str, channel: str) -> None:
    """Tag the current task's log records with its conversation id and channel (always on)."""
    _LOG_CONTEXT.set((conversation_id, channel))


def log_context() -> tuple[str, str] | None:
    """``(conversation_id, channel)`` bound by :func:`bind_log_context` for the current task."""
    return _LOG_CONTEXT.get()
