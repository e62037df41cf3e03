"""opentac's spans recorded without the SDK's per-span machinery, when that is provably the same.

The OpenTelemetry SDK's ``Tracer.start_span`` and ``Span`` pay for generality opentac's few
spans do not use: a sampler call, span-processor ``on_start``, a lock and bounded attribute and
event containers per span, and a second object built on ``end``. :class:`Recorder` checks once
per tracer (and cheaply again per turn) that the SDK would do nothing more than record: the
tracer is the SDK's own, of an SDK version this code was checked against; its span processors
are the SDK's batch or simple ones (their ``on_start`` does nothing); its internal span metrics
are off; and its sampler is ``ParentBased`` whose local sampled-parent delegate is ``ALWAYS_ON``
(or ``ALWAYS_ON`` itself), so a child of a sampled span is always recorded and sampled. Then a
:class:`FastSpan` is the span: an ``opentelemetry.trace.Span`` (it can be made current, the
app's spans nest in it, ``get_current_span().set_attribute`` works) and an SDK ``ReadableSpan``
handed to the span processors as is on ``end``. Anything else takes the SDK's own path.
"""

from __future__ import annotations

import os
import threading
import traceback
from collections.abc import Mapping
from random import getrandbits
from time import time_ns
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SynchronousMultiSpanProcessor, Tracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.version import __version__ as _sdk_version
from opentelemetry.semconv.attributes.exception_attributes import (
    EXCEPTION_ESCAPED,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    EXCEPTION_TYPE,
)
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation import _SPAN_KEY

from tac.core.logging import get_logger

try:
    from opentelemetry.sdk.trace._tracer_metrics import NoOpTracerMetrics
except ImportError:  # pragma: no cover - an SDK without span metrics is not a checked one
    NoOpTracerMetrics = None  # type: ignore[assignment,misc]

__all__ = ["FastSpan", "Recorder", "StageSpan"]

_log = get_logger(__name__)

# The SDK versions whose Tracer.start_span, Span and span processors this module was checked
# against (major, minor). Another version takes the SDK's path until it is checked and added.
_CHECKED = frozenset({(1, 44)})
_PROCESSORS = (BatchSpanProcessor, SimpleSpanProcessor)
_PLAIN = frozenset({str, bool, int, float})
_UNSET = Status(StatusCode.UNSET)
_LOCK = threading.Lock()  # guards a span's end against changes from another thread
_FIELDS = frozenset(vars(ReadableSpan("probe", resource=Resource({}))))
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_NOT_SAMPLED_RANDOM = TraceFlags(TraceFlags.RANDOM_TRACE_ID)


def _version(text: str) -> tuple[int, int]:
    major, _, rest = text.partition(".")
    minor = rest.partition(".")[0]
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else (0, 0)


_READABLE_FIELDS = {
    "_name",
    "_context",
    "_kind",
    "_instrumentation_info",
    "_instrumentation_scope",
    "_parent",
    "_start_time",
    "_end_time",
    "_attributes",
    "_events",
    "_links",
    "_resource",
    "_status",
}
SDK_CHECKED = (
    _version(_sdk_version) in _CHECKED
    and _FIELDS == _READABLE_FIELDS
    # the API's SpanContext tuple, which Recorder builds directly for a valid child's ids
    and tuple(SpanContext(1, 2, False, _SAMPLED))
    == (1, 2, False, _SAMPLED, trace.DEFAULT_TRACE_STATE, True)
)
_INTERNAL = SpanKind.INTERNAL
_SPAN_ID_MAX = 2**64 - 1


_PID = os.getpid()  # this process's id, for the batch processor's fork check


def _forked() -> None:
    global _PID
    _PID = os.getpid()


os.register_at_fork(after_in_child=_forked)


def _emit(batch: Any, span: FastSpan) -> None:
    """``BatchProcessor.emit`` of the checked SDK for ``span``: queued, the worker woken once a
    batch is full; a shut-down or forked processor, or a full queue, goes to the SDK's own
    ``emit`` (its log, its reset after a fork, its count of dropped spans)."""
    queue = batch._queue
    if batch._shutdown or batch._pid != _PID or len(queue) == batch._max_queue_size:
        batch.emit(span)
        return
    queue.appendleft(span)
    if len(queue) >= batch._max_export_batch_size and not batch._worker_awaken.is_set():
        batch._worker_awaken.set()


def _runtime_var() -> Any:
    """The ContextVar holding OpenTelemetry's current context, when the runtime context is the
    default one (contextvars), else ``None``."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    if type(runtime) is not ContextVarsRuntimeContext:
        return None
    return getattr(runtime, "_current_context", None)


def _always_on(sampler: Any) -> bool:
    """Whether ``sampler`` records and samples every span it is asked about."""
    return (
        isinstance(sampler, StaticSampler)
        and type(sampler).should_sample is StaticSampler.should_sample
        and sampler._decision is Decision.RECORD_AND_SAMPLE
    )


def _children_sampled(sampler: Any) -> bool:
    """Whether ``sampler`` records and samples every child of a local sampled span, with the
    span's attributes as given and the parent's trace state (``ALWAYS_ON``'s result)."""
    if _always_on(sampler):
        return True
    return (
        isinstance(sampler, ParentBased)
        and type(sampler).should_sample is ParentBased.should_sample
        and _always_on(getattr(sampler, "_local_parent_sampled", None))
    )


def _rule(sampler: Any) -> Decision | int | None:
    """What the SDK's own ``sampler`` decides, without calling it: its decision (a static
    sampler), the trace-id bound (``TraceIdRatioBased``), or ``None`` (ask the sampler)."""
    if isinstance(sampler, StaticSampler) and type(sampler).should_sample is (
        StaticSampler.should_sample
    ):
        decision: Decision = sampler._decision
        return decision
    if type(sampler) is TraceIdRatioBased:
        return sampler.bound
    return None


def _rules(sampler: Any) -> tuple[Decision | int | None, ...]:
    """``_rule`` of the sampler deciding a root span, a child of a remote sampled, of a remote
    unsampled, of a local sampled and of a local unsampled span."""
    if isinstance(sampler, ParentBased) and type(sampler).should_sample is (
        ParentBased.should_sample
    ):
        return (
            _rule(sampler._root),
            _rule(sampler._remote_parent_sampled),
            _rule(sampler._remote_parent_not_sampled),
            _rule(sampler._local_parent_sampled),
            _rule(sampler._local_parent_not_sampled),
        )
    return (_rule(sampler),) * 5


class Recorder:
    """What opentac's fast spans need of one SDK tracer, and whether they may be used with it."""

    __slots__ = (
        "enabled",
        "info",
        "limits",
        "max_attributes",
        "multi",
        "no_attributes",
        "ok",
        "plain",
        "processors",
        "random_ids",
        "resource",
        "rules",
        "sampler",
        "scope",
        "span_ids",
        "trace_ids",
        "tracer",
        "var",
    )

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self.ok = False
        if not (SDK_CHECKED and type(tracer) is Tracer):
            return
        self.multi = multi = tracer.span_processor
        self.processors = getattr(multi, "_span_processors", None)
        self.sampler = tracer.sampler
        self.rules = _rules(self.sampler)
        self.resource = tracer.resource
        self.enabled = tracer._is_enabled()
        self.limits = limits = tracer._span_limits
        self.info = tracer.instrumentation_info
        self.scope = tracer._instrumentation_scope
        self.trace_ids = tracer.id_generator.generate_trace_id
        self.span_ids = tracer.id_generator.generate_span_id
        # the SDK's default generator: its span ids drawn here, the same calls to random
        self.random_ids = type(tracer.id_generator) is RandomIdGenerator
        self.var = _runtime_var()
        # attributes stay a plain dict while the SDK's BoundedAttributes would store them as is
        self.plain = limits.max_span_attribute_length is None
        # an event without attributes gets this one: empty and immutable, as the SDK makes each
        self.no_attributes = BoundedAttributes(
            limits.max_event_attributes, None, max_value_len=limits.max_attribute_length
        )
        self.max_attributes = limits.max_span_attributes
        self.ok = (
            self.enabled
            and type(multi) is SynchronousMultiSpanProcessor
            and isinstance(self.processors, tuple)
            and all(type(processor) in _PROCESSORS for processor in self.processors)
            and NoOpTracerMetrics is not None
            and type(getattr(tracer, "_tracer_metrics", None)) is NoOpTracerMetrics
            and _children_sampled(self.sampler)
            and self.var is not None
        )

    def current(self, tracer: Any) -> bool:
        """Whether this is still the state of ``tracer`` it was made from."""
        if tracer is not self.tracer:
            return False
        if not (SDK_CHECKED and type(tracer) is Tracer):
            return True
        multi = tracer.span_processor
        return (
            multi is self.multi
            and getattr(multi, "_span_processors", None) is self.processors
            and tracer.sampler is self.sampler
            and tracer.resource is self.resource
            and tracer._is_enabled() is self.enabled
        )

    def fresh(self) -> bool:
        """Whether the tracer's processors and enabled state are still the ones checked (a
        processor added mid-turn may want ``on_start``)."""
        multi = self.multi
        # tracer._is_enabled(), without the call
        return multi._span_processors is self.processors and self.tracer._tracer_config.is_enabled

    def start_root(self, name: str, attributes: dict[str, Any]) -> Any:
        """A span opened in the current context, as ``Tracer.start_span(name, attributes=…)``
        would open it: the sampler decides; a left-out span is a ``NonRecordingSpan``."""
        parent = _span_context(self.var.get().get(_SPAN_KEY))
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = getrandbits(128) if self.random_ids else 0
            if not trace_id:  # the generator's own (it draws again on 0, as here)
                trace_id = self.trace_ids()
            random = self.random_ids or self.tracer.id_generator.is_trace_id_random()
        else:
            trace_id = parent.trace_id
            random = parent.trace_flags.random_trace_id
        if parent is None:
            rule = self.rules[0]
        else:
            rule = self.rules[
                (1 if parent.trace_flags & TraceFlags.SAMPLED else 2)
                if parent.is_remote
                else (3 if parent.trace_flags & TraceFlags.SAMPLED else 4)
            ]
        values: Mapping[str, Any] | None = attributes
        if rule is None:
            result = self.sampler.should_sample(
                None, trace_id, name, SpanKind.INTERNAL, attributes, ()
            )
            decision, values, trace_state = result.decision, result.attributes, result.trace_state
        else:  # the sampler's own result, worked out as it does
            if type(rule) is int:
                ratio = trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < rule
                decision = Decision.RECORD_AND_SAMPLE if ratio else Decision.DROP
            else:
                decision = rule  # type: ignore[assignment]
            trace_state = None if parent is None else parent.trace_state
        sampled = decision is Decision.RECORD_AND_SAMPLE  # Decision.is_sampled()
        flags = (
            (_SAMPLED_RANDOM if random else _SAMPLED)
            if sampled
            else (_NOT_SAMPLED_RANDOM if random else _NOT_SAMPLED)
        )
        span_id = getrandbits(64) if self.random_ids else 0
        if not span_id:  # the generator's own (the SDK's draws again on 0, as here)
            span_id = self.span_ids()
        context = SpanContext(trace_id, span_id, False, flags, trace_state)
        if decision is Decision.DROP:  # not Decision.is_recording()
            return trace.NonRecordingSpan(context)
        span = FastSpan(self, name, context, parent, _INTERNAL, values)
        span._built = context
        return span

    def in_context(self, span: Any) -> Context:
        """The current context with ``span`` as its span (``trace.set_span_in_context``)."""
        context = Context(self.var.get())
        dict.__setitem__(context, _SPAN_KEY, span)
        return context

    def child(
        self,
        turn_span: FastSpan,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None,
        plain: bool = False,
        stage: bool = False,
    ) -> FastSpan | None:
        """A recorded child of the span current here, else of ``turn_span`` (its turn's span),
        when ALWAYS_ON decides it (a local sampled parent, processors unchanged); else ``None``:
        the caller takes the SDK's path. ``plain``: the attributes are known to be non-empty
        string keys and str/int values; ``stage``: a :class:`StageSpan`."""
        parent = _span_context(self.var.get().get(_SPAN_KEY))
        if parent is None or not parent[5]:  # no valid current span: the turn's
            parent = turn_span._context
        # SpanContext is the API's tuple (trace_id, span_id, is_remote, trace_flags, trace_state,
        # is_valid) in the checked versions: read by index, without a property call each
        if not parent[5] or parent[2] or not parent[3] & TraceFlags.SAMPLED or not self.fresh():
            return None  # an invalid turn span (a custom generator's 0 id): a new trace there
        flags = _SAMPLED_RANDOM if parent[3] & TraceFlags.RANDOM_TRACE_ID else _SAMPLED
        span_id = getrandbits(64) if self.random_ids else self.span_ids()
        span = (StageSpan if stage else FastSpan)(
            self, name, parent, parent, kind, attributes, plain
        )
        span._flags = flags
        span._state = parent[4]
        if 0 < span_id <= _SPAN_ID_MAX:  # valid: its SpanContext is built when asked for
            span._span_id = span_id
        else:  # 0 from the SDK's generator: it draws again; a custom one's stays invalid
            if self.random_ids:
                span_id = self.span_ids()
            span._span_id = span_id
            span._built = SpanContext(parent[0], span_id, False, flags, parent[4])
        return span


def _span_context(span: Any) -> SpanContext | None:
    """The context of ``span`` (the current context's span value), ``None`` without one."""
    if span is None:
        return None
    kind = type(span)
    if kind is StageSpan or kind is FastSpan:
        return span._context  # type: ignore[no-any-return]
    if isinstance(span, trace.Span):  # trace.get_current_span's test
        return span.get_span_context()
    return None


class FastSpan(trace.Span, ReadableSpan):
    """A recorded span: the SDK's ``Span`` behaviour (limits, status rules, exception events)
    without its per-span costs; itself the ``ReadableSpan`` its processors get on ``end``."""

    # Its SpanContext is built when first asked for (most of opentac's spans are only read by
    # the exporter): one tracked object less per span while the batch processor holds it.
    _built: SpanContext | None = None

    def __init__(
        self,
        recorder: Recorder,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Mapping[str, Any] | None,
        plain: bool = False,
    ) -> None:
        """``context``: the span's own context, or (a child) its parent's, whose trace id it
        shares; the caller then sets ``_span_id``, ``_flags`` and ``_state``."""
        # ReadableSpan's fields, set as its __init__ would (_FIELDS checks the names), but
        # for _context: the span's ids, a property builds it
        self._name = name
        self._trace_id = context[0]
        self._span_id = context[1]
        self._flags = context[3]
        self._state = context[4]
        self._kind = kind
        self._instrumentation_info = recorder.info
        self._instrumentation_scope = recorder.scope
        self._parent = parent
        self._start_time = time_ns()
        self._end_time: int | None = None
        self._events: Any = ()
        self._links: Any = ()
        self._resource = recorder.resource
        self._status = _UNSET
        self._recorder = recorder
        if not attributes:
            self._attributes: Any = {}
        elif recorder.plain and (
            plain or all(type(v) in _PLAIN and type(k) is str and k for k, v in attributes.items())
        ):
            maxlen = recorder.max_attributes
            if maxlen is None or len(attributes) <= maxlen:
                self._attributes = attributes if plain else dict(attributes)
            else:
                self._attributes = self._bounded(attributes)
        else:
            self._attributes = self._bounded(attributes)

    def _bounded(self, attributes: Mapping[str, Any] | None) -> BoundedAttributes:
        limits = self._recorder.limits
        return BoundedAttributes(
            limits.max_span_attributes,
            attributes,
            immutable=False,
            max_value_len=limits.max_span_attribute_length,
        )

    def _put(self, key: str, value: Any) -> None:
        """Store one attribute as the SDK's ``BoundedAttributes`` would."""
        values = self._attributes
        if type(values) is dict:
            if (
                type(value) in _PLAIN
                and type(key) is str
                and key
                and self._recorder.plain
                and (
                    key in values
                    or self._recorder.max_attributes is None
                    or len(values) < self._recorder.max_attributes
                )
            ):
                values.pop(key, None)  # a key set again moves to the end, as in the SDK
                values[key] = value
                return
            self._attributes = values = self._bounded(values)
        values[key] = value

    @property
    def _context(self) -> SpanContext:  # type: ignore[override]
        """ReadableSpan's ``_context`` field (``context``, ``get_span_context()``)."""
        built = self._built
        if built is None:  # the ids are valid and local: SpanContext's own tuple
            values = (self._trace_id, self._span_id, False, self._flags, self._state, True)
            built = self._built = tuple.__new__(SpanContext, values)
        return built

    def get_span_context(self) -> SpanContext:
        return self._context

    def traceparent(self) -> str:
        """The W3C ``traceparent`` header of this span, without building its context."""
        return f"00-{self._trace_id:032x}-{self._span_id:016x}-{self._flags:02x}"

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        with _LOCK:
            if self._end_time is not None:
                _log.warning("Setting attribute on ended span.")
                return
            for key, value in attributes.items():
                self._put(key, value)

    def set_attribute(self, key: str, value: Any) -> None:
        with _LOCK:
            if self._end_time is not None:
                _log.warning("Setting attribute on ended span.")
                return
            self._put(key, value)

    def _ended(self, what: str) -> bool:
        if self._end_time is None:
            return False
        _log.warning("Tried calling %s on an ended span.", what)
        return True

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        limits = self._recorder.limits
        event = Event(
            name,
            BoundedAttributes(
                limits.max_event_attributes, attributes, max_value_len=limits.max_attribute_length
            )
            if attributes
            else self._recorder.no_attributes,
            timestamp,
        )
        with _LOCK:
            if self._ended("_add_event"):
                return
            if not isinstance(self._events, BoundedList):
                self._events = BoundedList(limits.max_events)
            self._events.append(event)

    def add_link(self, context: SpanContext, attributes: Mapping[str, Any] | None = None) -> None:
        if not (context and (context.is_valid or attributes or context.trace_state)):
            return
        limits = self._recorder.limits
        link = Link(
            context,
            BoundedAttributes(
                limits.max_link_attributes, attributes, max_value_len=limits.max_attribute_length
            ),
        )
        with _LOCK:
            if self._ended("_add_link"):
                return
            if not isinstance(self._links, BoundedList):
                self._links = BoundedList(limits.max_links)
            self._links.append(link)

    def update_name(self, name: str) -> None:
        with _LOCK:
            if not self._ended("update_name"):
                self._name = name

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        with _LOCK:
            if self._ended("set_status"):
                return
            ok = self._status.status_code is StatusCode.OK
            if isinstance(status, Status):
                if ok or status.status_code is StatusCode.UNSET:
                    return
                if description is not None:
                    _log.warning(
                        "Description %s ignored. Use either `Status` or "
                        "`(StatusCode, Description)`",
                        description,
                    )
                self._status = status
            elif not ok and status is not StatusCode.UNSET:
                self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        module = type(exception).__module__
        qualname = type(exception).__qualname__
        values: dict[str, Any] = {
            EXCEPTION_TYPE: f"{module}.{qualname}" if module and module != "builtins" else qualname,
            EXCEPTION_MESSAGE: str(exception),
            EXCEPTION_STACKTRACE: "".join(traceback.format_exception(exception)),
            EXCEPTION_ESCAPED: str(escaped),
        }
        if attributes:
            values.update(attributes)
        self.add_event("exception", values, timestamp)

    def end(self, end_time: int | None = None) -> None:
        with _LOCK:
            if self._end_time is not None:
                _log.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
            if type(self._attributes) is not dict:  # BoundedAttributes
                self._attributes._immutable = True
        # SynchronousMultiSpanProcessor.on_end, with the SDK's BatchSpanProcessor.on_end (queue
        # a sampled span) done here: two calls and three property reads less per span
        sampled = self._flags & TraceFlags.SAMPLED
        for processor in self._recorder.multi._span_processors:
            if type(processor) is BatchSpanProcessor:
                if sampled:
                    _emit(processor._batch_processor, self)
            else:
                processor.on_end(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self.is_recording():
            self.record_exception(exc_val, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()

    def __repr__(self) -> str:
        return f'{type(self).__name__}(name="{self._name}", context={self._context})'


class StageSpan(FastSpan):
    """The span of one stage of a turn, its own context manager: current while the ``with``
    block runs (one context attach), ended when the block leaves; an exception (not a
    cancellation) is recorded on it and sets its status to error."""

    _token: Any = None

    def __enter__(self) -> StageSpan:
        var = self._recorder.var
        self._token = var.set(self._recorder.in_context(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        try:  # context.detach(token)
            self._recorder.var.reset(token)
        except Exception:
            _log.exception("Failed to detach context")
        if isinstance(exc_val, Exception):
            self.record_exception(exc_val)
            self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()
