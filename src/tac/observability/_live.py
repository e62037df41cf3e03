"""The live observer: Prometheus metrics and/or OpenTelemetry spans behind the hooks."""

from __future__ import annotations

from functools import lru_cache
from time import perf_counter
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tac.observability._hooks import _TURN, NULL, Observer, Turn
from tac.observability._labels import bounded, channel_label, operation_label

if TYPE_CHECKING:
    from tac.observability._metrics import Metrics

__all__ = ["LiveObserver"]

_STATUSES = frozenset(
    {
        # Conversation Orchestrator delivery statuses
        "initiated",
        "in_progress",
        "delivered",
        "read",
        "completed",
        "failed",
        "undelivered",
        "sent",
        "queued",
        # Voice call statuses
        "ringing",
        "in-progress",
        "busy",
        "no-answer",
        "canceled",
    }
)
_WS_FAILURES = frozenset({"refused", "setup", "lost", "frame_dropped", "relay_error"})
_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1015}
)


class LiveObserver(Observer):
    """Records into ``metrics`` (a :class:`~tac.observability._metrics.Metrics`) when set and
    opens spans with ``tracer`` (an OpenTelemetry tracer) when set."""

    def __init__(self, metrics: Metrics | None = None, tracer: Any = None) -> None:
        self.metrics = metrics
        self.tracer = tracer
        if tracer is not None:
            from opentelemetry import baggage, context, propagate, trace

            self._trace = trace
            self._attach = context.attach
            self._detach = context.detach
            self._current = context.get_current
            self._baggage_key = baggage._BAGGAGE_KEY
            self._internal = trace.SpanKind.INTERNAL
            self._client = trace.SpanKind.CLIENT
            self._inject = propagate.inject
            self._textmap = propagate.get_global_textmap
            self._checked: Any = None  # the global propagator last checked by _plain_w3c
            self._w3c = False
            self._error = trace.Status(trace.StatusCode.ERROR)
            self._proxy = trace.ProxyTracer
            self._recorder: Any = None  # the last Recorder made, for the tracer it was made for
            self._spans: Any = None
            self._fast_spans: Any = None  # the fast span classes, when the SDK is there
            self._indexed = False  # whether SpanContext is the tuple _spans checked
            try:
                import opentelemetry.sdk.trace  # noqa: F401
            except ImportError:  # the API without the SDK: only the tracer's own spans
                pass
            else:
                from tac.observability import _spans

                self._spans = _spans
                self._fast_spans = (_spans.FastSpan, _spans.StageSpan)
                self._indexed = _spans.SDK_CHECKED

    # -- spans ---------------------------------------------------------------------------------

    def _fast(self) -> Any:
        """The :class:`~tac.observability._spans.Recorder` of the tracer when opentac's spans
        may skip the SDK's per-span machinery (decision 0012), else ``None``."""
        if self._spans is None:
            return None
        tracer = self.tracer
        if type(tracer) is self._proxy:  # the global provider's tracer, once there is one
            tracer = getattr(tracer, "_real_tracer", None) or tracer
        recorder = self._recorder
        if recorder is None or not recorder.current(tracer):
            recorder = self._recorder = self._spans.Recorder(tracer)
        return recorder if recorder.ok else None

    def _start(
        self,
        turn: Turn | None,
        name: str,
        kind: Any,
        attributes: Any,
        current_context: Any,
        plain: bool = False,
    ) -> Any:
        """A span of ``turn`` hanging from the span current in ``current_context`` (the current
        context), else from the turn's span (``plain``: the attributes have string keys and str
        or int values)."""
        if turn is not None:
            recorder = turn.recorder
            if recorder is not None:  # a child ALWAYS_ON records, without the SDK's machinery
                span = recorder.child(turn.span, name, kind, attributes, plain)
                if span is not None:
                    return span
            current = self._trace.get_current_span(current_context).get_span_context()
            context = None if current.is_valid else turn.context
        else:
            context = None
        return self.tracer.start_span(name, context=context, kind=kind, attributes=attributes)

    def _propagate(self, headers: dict[str, str], span: Any, current_context: Any = None) -> None:
        """Add the W3C trace context of ``span`` to ``headers`` (the global propagator's way).

        With the default propagator (W3C trace context and baggage) and nothing but the span to
        pass on, the ``traceparent`` header is formatted here, without the propagator's layers.
        """
        fast = self._fast_spans
        if fast is not None and type(span) in fast and span._built is None:
            # valid ids, its context not built yet: the header from them, without building it
            trace_state, header = span._state, span.traceparent()
        elif self._indexed:  # the checked API's SpanContext tuple: by index, no property calls
            context = span.get_span_context()
            trace_state = context[4]
            header = (
                f"00-{context[0]:032x}-{context[1]:016x}-{context[3]:02x}" if context[5] else None
            )
        else:
            context = span.get_span_context()
            trace_state = context.trace_state
            header = (
                f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
                if context.is_valid
                else None
            )
        if current_context is None:
            current_context = self._current()
        baggage = current_context.get(self._baggage_key)  # baggage.get_all(), without its calls
        if self._plain_w3c() and not trace_state and not (isinstance(baggage, dict) and baggage):
            if header is not None:
                headers["traceparent"] = header
            return
        self._inject(headers, context=self._trace.set_span_in_context(span))

    def _plain_w3c(self) -> bool:
        """Whether the global propagator is the default one: W3C trace context (and baggage)."""
        textmap = self._textmap()
        if textmap is not self._checked:
            self._checked, self._w3c = textmap, _is_w3c(textmap)
        return self._w3c

    # -- turns ---------------------------------------------------------------------------------

    def turn_begin(self, channel: str, conversation_id: str | None = None) -> Turn | None:
        name = str(getattr(channel, "value", channel)).lower()
        turn = Turn(name, perf_counter(), None, conversation_id)
        if self.tracer is not None:
            attributes = {"tac.channel": name}
            if conversation_id:
                attributes["tac.conversation_id"] = conversation_id
            recorder = self._fast()
            if recorder is not None:
                turn.span = span = recorder.start_root("tac.turn", attributes)
            else:
                turn.span = span = self.tracer.start_span("tac.turn", attributes=attributes)
            if span.is_recording():  # else a trace the sampler left out: no children either
                if recorder is not None:
                    turn.context = recorder.in_context(span)
                    turn.recorder = recorder
                else:
                    turn.context = self._trace.set_span_in_context(span)
        _TURN.set(turn)
        return turn

    def turn_end(self, turn: Turn | None, outcome: str | None = None) -> None:
        if turn is None:
            return
        outcome = outcome or turn.outcome
        metrics = self.metrics
        if metrics is not None and outcome not in ("replied", "duplicate"):
            metrics.turn_seconds.observe(
                (channel_label(turn.channel), outcome), perf_counter() - turn.started
            )
        if turn.context is not None:
            span = turn.span
            attributes = {"tac.turn.outcome": outcome}
            if turn.conversation_id:  # voice learns it once the session is ready
                attributes["tac.conversation_id"] = turn.conversation_id
            span.set_attributes(attributes)
            if outcome == "error":
                span.set_status(self._error)
            span.end()

    def stage(self, name: str, **attributes: Any) -> Any:
        if self.tracer is None:
            return NULL
        turn = _TURN.get()
        if turn is None or turn.context is None:
            return NULL
        recorder = turn.recorder
        if recorder is not None:  # the stage's span is its own context manager
            span = recorder.child(turn.span, name, self._internal, attributes or None, stage=True)
            if span is not None:
                return span
        return _Stage(self, turn, name, attributes or None)

    def callback_started(self) -> Any:
        turn = _TURN.get()
        if turn is None:
            return NULL
        if self.metrics is not None:
            self.metrics.to_callback_seconds.observe(
                (channel_label(turn.channel),), perf_counter() - turn.started
            )
        return self.stage("tac.callback")

    def reply_sent(self, *, last: bool = True) -> None:
        turn = _TURN.get()
        if turn is None:
            return
        now = perf_counter()
        metrics = self.metrics
        if turn.first_token is None and turn.channel == "voice":
            turn.first_token = now
            if metrics is not None:
                metrics.first_token_seconds.observe(("voice",), now - turn.started)
            if turn.context is not None:
                turn.span.add_event("tac.first_token")
        if last and turn.outcome != "replied":  # a reply counts once, however it is told
            turn.outcome = "replied"
            if metrics is not None:
                metrics.turn_seconds.observe(
                    (channel_label(turn.channel), "replied"), now - turn.started
                )

    # -- the server ----------------------------------------------------------------------------

    def webhook(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.webhooks.inc((outcome,))

    def websocket_closed(self, code: int | None) -> None:
        if self.metrics is not None:
            label = "lost" if code is None else str(code) if code in _CLOSE_CODES else "other"
            self.metrics.websocket_closes.inc((label,))

    def websocket_failure(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.websocket_failures.inc((bounded(reason, _WS_FAILURES),))

    # -- sessions, calls, events ---------------------------------------------------------------

    def session_started(self, channel: str) -> None:
        if self.metrics is not None:
            self.metrics.active_sessions.inc((channel_label(channel),))

    def session_ended(self, channel: str, reason: str) -> None:
        if self.metrics is not None:
            label = channel_label(channel)
            self.metrics.active_sessions.inc((label,), -1)
            self.metrics.sessions_ended.inc((label, _reason(reason)))

    def call_opened(self) -> None:
        if self.metrics is not None:
            self.metrics.active_calls.inc()

    def call_closed(self) -> None:
        if self.metrics is not None:
            self.metrics.active_calls.inc((), -1)

    def interrupt(self, channel: str) -> None:
        if self.metrics is not None:
            self.metrics.interrupts.inc((channel_label(channel),))

    def error(self, context: dict[str, Any]) -> None:
        turn = _TURN.get()
        if turn is not None and turn.outcome != "replied":
            turn.outcome = "error"
        if self.metrics is not None:
            channel = channel_label(context.get("channel") or "other")
            self.metrics.errors.inc((channel,))
            if context.get("reply_uncertain"):
                self.metrics.reply_uncertain.inc((channel,))

    def delivery_status(self, channel: str, status: str) -> None:
        if self.metrics is not None:
            self.metrics.delivery_status.inc((channel_label(channel), bounded(status, _STATUSES)))

    def inbound_takeover(self) -> None:
        if self.metrics is not None:
            self.metrics.inbound_takeovers.inc()

    def lease_expired(self) -> None:
        if self.metrics is not None:
            self.metrics.lease_expiries.inc()

    # -- memory and Twilio ---------------------------------------------------------------------

    def memory(self, source: str, seconds: float, ok: bool) -> None:
        if self.metrics is not None:
            self.metrics.memory_seconds.observe((source, "ok" if ok else "error"), seconds)

    def twilio_request(
        self, product: str, method: str, path: str, url: str, headers: dict[str, str]
    ) -> Any:
        return _Request(self, product, method, path, url, headers)

    # -- logs ----------------------------------------------------------------------------------

    def log_ids(self) -> tuple[str, str] | None:
        if self.tracer is None:
            return None
        context = self._trace.get_current_span().get_span_context()
        if not context.is_valid:
            turn = _TURN.get()
            if turn is None or turn.span is None:
                return None
            context = turn.span.get_span_context()
        return format(context.trace_id, "032x"), format(context.span_id, "016x")


class _Stage:
    """One stage of a recorded turn: a child span, current while the stage runs."""

    __slots__ = ("attributes", "name", "observer", "span", "token", "turn")

    def __init__(
        self, observer: LiveObserver, turn: Turn, name: str, attributes: dict[str, Any] | None
    ) -> None:
        self.observer = observer
        self.turn = turn
        self.name = name
        self.attributes = attributes

    def __enter__(self) -> Any:
        observer = self.observer
        current = observer._current()
        self.span = span = observer._start(
            self.turn, self.name, observer._trace.SpanKind.INTERNAL, self.attributes, current
        )
        self.token = observer._attach(observer._trace.set_span_in_context(span, current))
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.observer._detach(self.token)
        span = self.span
        if isinstance(exc, Exception):  # as the SDK's own spans: not for a cancellation
            trace = self.observer._trace
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()


def _is_w3c(textmap: Any) -> bool:
    """Whether ``textmap`` is W3C trace context, alone or with W3C baggage (the default)."""
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    if type(textmap) is TraceContextTextMapPropagator:
        return True
    members = (
        getattr(textmap, "_propagators", None) if type(textmap) is CompositePropagator else None
    )
    kinds = {type(member) for member in members or ()}
    return TraceContextTextMapPropagator in kinds and kinds <= {
        TraceContextTextMapPropagator,
        W3CBaggagePropagator,
    }


def _server(url: str) -> tuple[str, int]:
    """``server.address`` and ``server.port`` of ``url``."""
    start = url.find("://") + 3
    end = url.find("/", start) if start > 2 else -1
    return _origin(url if end < 0 else url[:end])


@lru_cache(maxsize=64)
def _origin(origin: str) -> tuple[str, int]:
    parts = urlsplit(origin)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _reason(reason: str) -> str:
    value = reason.lower().replace(" ", "_")
    return value if value.replace("_", "").isalpha() and len(value) <= 24 else "other"


class _Request:
    """One attempt of a Twilio API request: its timer, and its client span when tracing."""

    __slots__ = ("observer", "operation", "product", "span", "started")

    def __init__(
        self,
        observer: LiveObserver,
        product: str,
        method: str,
        path: str,
        url: str,
        headers: dict[str, str],
    ) -> None:
        self.observer = observer
        self.product = product
        self.operation = operation_label(method, path) if observer.metrics is not None else ""
        self.span = None
        if observer.tracer is not None:
            turn = _TURN.get()
            if turn is not None and turn.span is not None and turn.context is None:
                # a trace the sampler left out: pass its context on, record no span
                observer._propagate(headers, turn.span)
                self.started = perf_counter()
                return
            current = observer._current()
            host, port = _server(url)
            template = (self.operation or operation_label(method, path)).partition(" ")[2] or path
            self.span = span = observer._start(
                turn,
                f"{method} {template}",
                observer._client,
                {
                    "http.request.method": method,
                    "url.full": url,
                    "url.template": template,
                    "server.address": host,
                    "server.port": port,
                    "tac.twilio.product": product,
                },
                current,
                plain=True,
            )
            observer._propagate(headers, span, current)
        self.started = perf_counter()

    def done(self, status: int) -> None:
        """The attempt got an answer with ``status``."""
        elapsed = perf_counter() - self.started
        metrics = self.observer.metrics
        if metrics is not None:
            metrics.twilio_seconds.observe((self.product, self.operation), elapsed)
            metrics.twilio_requests.inc((self.product, self.operation, str(status)))
            if status >= 400:
                metrics.twilio_errors.inc((self.product, self.operation, str(status)))
        span = self.span
        if span is not None:
            if status >= 400:
                span.set_attributes(
                    {"http.response.status_code": status, "error.type": str(status)}
                )
                span.set_status(self.observer._error)
            else:
                span.set_attribute("http.response.status_code", status)
            span.end()

    def failed(self, exc: BaseException) -> None:
        """The attempt failed without an answer (a transport error)."""
        elapsed = perf_counter() - self.started
        kind = type(exc).__name__
        metrics = self.observer.metrics
        if metrics is not None:
            metrics.twilio_seconds.observe((self.product, self.operation), elapsed)
            metrics.twilio_requests.inc((self.product, self.operation, kind))
            metrics.twilio_errors.inc((self.product, self.operation, kind))
        span = self.span
        if span is not None:
            trace = self.observer._trace
            span.set_attribute("error.type", kind)
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
            span.end()
