"""opentac's fast spans (decision 0012) against the SDK's own: the same spans, or the SDK's path.

Each test drives the hooks of one turn the way the server does (turn, stages, the callback with
the app's own span inside, Twilio requests, a failing stage) and reads the spans back with the
SDK's in-memory exporter.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    DEFAULT_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from tac import observability
from tac.observability import _hooks, _spans
from tac.observability._spans import FastSpan


class CustomProcessor(SimpleSpanProcessor):
    """The SDK's processor under a type opentac does not know."""


@pytest.fixture(autouse=True)
def _off() -> Iterator[None]:
    token = _hooks._TURN.set(None)  # the turns begun here end with the test
    yield
    _hooks._TURN.reset(token)
    observability.disable()


def traced(
    processor: type[SpanProcessor] = SimpleSpanProcessor, **provider: Any
) -> InMemorySpanExporter:
    """Tracing on with a fresh SDK provider exporting to memory; the exporter."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider(**provider)
    tracer_provider.add_span_processor(processor(exporter))  # type: ignore[call-arg]
    observability.enable_tracing(tracer_provider)
    return exporter


class SequentialIds(IdGenerator):
    """Ids in sequence, so two runs of the same turn get the same ids."""

    def __init__(self) -> None:
        self.last = 0

    def generate_span_id(self) -> int:
        self.last += 1
        return self.last

    def generate_trace_id(self) -> int:
        self.last += 1
        return self.last


def fail(message: str) -> None:
    raise ValueError(message)


def one_turn(app: trace.Tracer, *, channel: str = "voice") -> tuple[str, str] | None:
    """A turn through every hook that opens or shapes a span; the log ids in the callback."""
    observer = _hooks.observer
    turn = observer.turn_begin(channel.upper(), "conv_1")
    with observer.stage("tac.claim"):
        pass
    with observer.stage("tac.memory", **{"tac.memory.mode": "always"}):
        probe = observer.twilio_request(
            "memory", "GET", "/v1/Stores/mem_1/Profiles", "https://memory.twilio.com/v1/x", {}
        )
        probe.done(200)
    with pytest.raises(ValueError), observer.stage("tac.session.load"):
        fail("store said no")
    with observer.callback_started():
        ids = observer.log_ids()
        current = trace.get_current_span()
        current.set_attribute("app.user", "u1")
        current.set_attributes({"app.tags": ["a", "b"], "app.n": 3})
        current.add_event("app.thought", {"k": "v"})
        with app.start_as_current_span("llm.call") as span:
            span.set_attribute("app.model", "fake")
            probe = observer.twilio_request(
                "api", "GET", "/2010-04-01/Accounts/AC1/Calls.json", "http://127.0.0.1:9/x", {}
            )
            probe.failed(ConnectionError("refused"))
    observer.reply_sent(last=False)
    with observer.stage("tac.reply"):
        probe = observer.twilio_request(
            "conversations",
            "POST",
            "/v2/Conversations/conv_1/Actions",
            "http://127.0.0.1:9/conversations/v2/Conversations/conv_1/Actions",
            {},
        )
        probe.done(404)
    observer.reply_sent()
    observer.turn_end(turn)
    return ids


def shape(spans: Sequence[ReadableSpan]) -> list[tuple[Any, ...]]:
    """Everything an exporter can read of ``spans`` but times."""
    names = {span.context.span_id: span.name for span in spans if span.context is not None}
    assert len({span.context.trace_id for span in spans if span.context is not None}) == 1
    rows = []
    for span in spans:
        assert span.context is not None
        assert span.start_time is not None
        assert span.end_time is not None
        assert span.start_time <= span.end_time
        parent = span.parent
        rows.append(
            (
                span.name,
                span.context.trace_id,
                span.context.span_id,
                None if parent is None else parent.span_id,
                span.kind,
                None if parent is None else (names.get(parent.span_id), parent.is_remote),
                dict(span.attributes or {}),
                span.status.status_code,
                span.status.description,
                span.instrumentation_scope,
                dict(span.resource.attributes),
                span.resource.schema_url,
                [(event.name, dict(event.attributes or {})) for event in span.events],
                [dict(link.attributes or {}) for link in span.links],
                span.dropped_attributes,
                span.dropped_events,
                span.dropped_links,
                span.context.trace_flags,
                span.context.is_remote,
                span.context.trace_state,
            )
        )
    return rows


class CountingSampler(Sampler):
    """ParentBased(ALWAYS_ON)'s decisions, counted: a sampler opentac cannot know."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.inner = ParentBased(TraceIdRatioBased(1.0))

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        self.calls.append(name)
        return self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links)

    def get_description(self) -> str:
        return "Counting"


@pytest.mark.parametrize(
    "provider",
    [
        {},
        {"resource": Resource({"service.name": "agent"})},
        {"span_limits": SpanLimits(max_span_attributes=3, max_attribute_length=8, max_events=1)},
        {"sampler": ParentBased(TraceIdRatioBased(0.5))},
        {"sampler": ParentBased(CountingSampler())},
    ],
    ids=["default", "resource", "limits", "ratio", "custom-root"],
)
def test_the_fast_path_records_what_the_sdk_records(provider: dict[str, Any]) -> None:
    runs = []
    for processor in (SimpleSpanProcessor, CustomProcessor):
        exporter = traced(processor, id_generator=SequentialIds(), **provider)
        app_ids = SequentialIds()
        app_ids.last = 1000
        app = TracerProvider(id_generator=app_ids)  # the app's own tracing, the same exporter
        app.add_span_processor(SimpleSpanProcessor(exporter))
        ids = one_turn(app.get_tracer("the-app"))
        spans = exporter.get_finished_spans()
        (callback,) = [span for span in spans if span.name == "tac.callback"]
        assert callback.context is not None
        context = callback.context
        assert ids == (format(context.trace_id, "032x"), format(context.span_id, "016x"))
        ours = [span for span in spans if span.name.startswith("tac.") or " " in span.name]
        assert len(ours) == 9
        assert all(
            isinstance(span, FastSpan) is (processor is SimpleSpanProcessor) for span in ours
        )
        runs.append(shape(spans))
        observability.disable()
    fast, sdk = runs
    assert fast == sdk
    names = [row[0] for row in fast]
    parents = {row[0]: row[5][0] if row[5] else None for row in fast}
    assert parents["llm.call"] == "tac.callback"  # the app's span nests in the callback's
    assert parents["GET /2010-04-01/Accounts/{id}/Calls.json"] == "llm.call"
    assert parents["GET /v1/Stores/{id}/Profiles"] == "tac.memory"
    assert parents["POST /v2/Conversations/{id}/Actions"] == "tac.reply"
    assert {parents[name] for name in names if name.startswith("tac.") and name != "tac.turn"} == {
        "tac.turn"
    }


class ZeroSpanIds(SequentialIds):
    """A generator whose span ids are all invalid (0): the SDK records such spans anyway."""

    def generate_span_id(self) -> int:
        return 0


def seeded() -> RandomIdGenerator:
    """The SDK's default generator, after seeding ``random`` (the same ids on each run)."""
    random.seed(2026)
    return RandomIdGenerator()


@pytest.mark.parametrize("ids", [seeded, ZeroSpanIds], ids=["default-seeded", "zero-span-ids"])
def test_the_fast_path_draws_the_ids_the_sdk_draws(ids: Callable[[], IdGenerator]) -> None:
    runs = []
    for processor in (SimpleSpanProcessor, CustomProcessor):
        exporter = traced(processor, id_generator=ids())
        headers: dict[str, str] = {}
        observer = _hooks.observer
        turn = observer.turn_begin("sms", "conv_1")
        with observer.stage("tac.claim"):
            pass
        with observer.stage("tac.reply"):
            observer.twilio_request("api", "POST", "/x", "http://127.0.0.1:9/x", headers).done(201)
        observer.turn_end(turn)
        spans = exporter.get_finished_spans()
        assert len(spans) == 4
        rows = []
        for span in spans:
            assert span.context is not None
            parent = span.parent
            rows.append(
                (
                    span.name,
                    tuple(span.context),
                    None if parent is None else tuple(parent),
                    dict(span.attributes or {}),
                )
            )
        runs.append((rows, headers.get("traceparent")))
        observability.disable()
    (fast, fast_header), (sdk, sdk_header) = runs
    assert fast == sdk
    assert fast_header == sdk_header  # none for an invalid span id
    assert (fast_header is None) is (ids is ZeroSpanIds)


def test_log_ids_and_traceparent_carry_the_fast_spans_ids() -> None:
    exporter = traced()
    observer = _hooks.observer
    turn = observer.turn_begin("sms", "conv_1")
    headers: dict[str, str] = {}
    with observer.stage("tac.reply"):
        ids = observer.log_ids()
        observer.twilio_request("api", "POST", "/x", "http://127.0.0.1:9/x", headers).done(201)
    observer.turn_end(turn)
    reply, send, turn_span = (
        next(s for s in exporter.get_finished_spans() if s.name == name)
        for name in ("tac.reply", "POST /x", "tac.turn")
    )
    assert isinstance(reply, FastSpan)
    assert reply.context is not None
    assert send.context is not None
    assert ids == (format(reply.context.trace_id, "032x"), format(reply.context.span_id, "016x"))
    trace_id = format(send.context.trace_id, "032x")
    flags = f"{send.context.trace_flags:02x}"
    assert headers["traceparent"] == f"00-{trace_id}-{send.context.span_id:016x}-{flags}"
    assert send.context.trace_flags.sampled
    assert turn_span.attributes is not None
    assert turn_span.attributes["tac.turn.outcome"] == "no_reply"


class StartingProcessor(SimpleSpanProcessor):
    """Wants ``on_start`` of every span."""

    def __init__(self, exporter: InMemorySpanExporter) -> None:
        super().__init__(exporter)
        self.started: list[str] = []

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        self.started.append(span.name)


def test_a_custom_sampler_takes_the_sdk_path() -> None:
    sampler = CountingSampler()
    exporter = traced(sampler=sampler)
    app = TracerProvider()
    assert _hooks.observer._fast() is None  # type: ignore[attr-defined]
    one_turn(app.get_tracer("the-app"))
    spans = exporter.get_finished_spans()
    assert not any(isinstance(span, FastSpan) for span in spans)
    assert sorted(sampler.calls) == sorted(span.name for span in spans)  # every span asked
    assert len(spans) == 9


def test_a_processor_with_on_start_takes_the_sdk_path() -> None:
    exporter = InMemorySpanExporter()
    processor = StartingProcessor(exporter)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    observability.enable_tracing(provider)
    one_turn(TracerProvider().get_tracer("the-app"))
    spans = exporter.get_finished_spans()
    assert len(spans) == 9
    assert sorted(processor.started) == sorted(span.name for span in spans)


def test_a_processor_added_later_is_seen() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    observability.enable_tracing(provider)
    observer = _hooks.observer
    one_turn(TracerProvider().get_tracer("the-app"))
    assert observer._fast() is not None  # type: ignore[attr-defined]
    later = InMemorySpanExporter()
    processor = StartingProcessor(later)
    provider.add_span_processor(processor)
    assert observer._fast() is None  # type: ignore[attr-defined]
    one_turn(TracerProvider().get_tracer("the-app"))
    assert len(processor.started) == 9
    assert len(later.get_finished_spans()) == 9


@pytest.mark.parametrize("sampler", [DEFAULT_OFF, ALWAYS_OFF], ids=["parent-based-off", "off"])
def test_a_sampled_out_trace_records_nothing(sampler: Sampler) -> None:
    exporter = traced(sampler=sampler)
    observer = _hooks.observer
    assert (observer._fast() is not None) is (sampler is DEFAULT_OFF)  # type: ignore[attr-defined]
    headers: dict[str, str] = {}
    turn = observer.turn_begin("sms", "conv_1")
    assert observer.stage("tac.claim") is _hooks.NULL
    assert observer.callback_started() is _hooks.NULL
    probe = observer.twilio_request("api", "POST", "/x", "http://127.0.0.1:9/x", headers)
    probe.done(200)
    observer.turn_end(turn)
    assert exporter.get_finished_spans() == ()
    assert turn is not None
    assert turn.span is not None
    assert not turn.span.is_recording()
    assert int(headers["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0  # not sampled


def test_a_ratio_sampler_records_whole_turns_or_nothing() -> None:
    exporter = traced(sampler=ParentBased(TraceIdRatioBased(0.5)))
    app = TracerProvider()
    app.add_span_processor(SimpleSpanProcessor(exporter))
    for _ in range(60):
        one_turn(app.get_tracer("the-app"))
    spans = exporter.get_finished_spans()
    turns = {span.context.trace_id for span in spans if span.name == "tac.turn" and span.context}
    assert 0 < len(turns) < 60
    for trace_id in turns:
        assert len([s for s in spans if s.context and s.context.trace_id == trace_id]) == 10
    # of a turn left out, nothing; the app's own span is then a root of the app's tracing
    assert {s.context.trace_id for s in spans if s.context and s.name != "llm.call"} == turns


def test_an_unchecked_sdk_version_takes_the_sdk_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_spans, "SDK_CHECKED", False)
    exporter = traced()
    assert _hooks.observer._fast() is None  # type: ignore[attr-defined]
    one_turn(TracerProvider().get_tracer("the-app"))
    spans = exporter.get_finished_spans()
    assert len(spans) == 9
    assert not any(isinstance(span, FastSpan) for span in spans)


def test_the_fast_path_is_on_for_the_checked_sdk() -> None:
    """Fails when the SDK is upgraded: check its Tracer.start_span, Span and processors against
    _spans.py, then add the version to _spans._CHECKED."""
    traced()
    assert _spans.SDK_CHECKED
    assert _hooks.observer._fast() is not None  # type: ignore[attr-defined]


def test_the_app_can_end_and_rename_a_fast_span_like_an_sdk_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = traced()
    observer = _hooks.observer
    turn = observer.turn_begin("sms", "conv_1")
    with observer.callback_started():
        span = trace.get_current_span()
        assert isinstance(span, FastSpan)
        span.update_name("tac.callback.renamed")
        span.set_status(trace.StatusCode.OK)
        span.set_status(trace.Status(trace.StatusCode.ERROR))  # OK is final
        span.add_link(span.get_span_context(), {"why": "self"})
    span.set_attribute("late", 1)  # ended: ignored
    observer.turn_end(turn)
    (renamed,) = [s for s in exporter.get_finished_spans() if s.name == "tac.callback.renamed"]
    assert renamed.status.status_code is trace.StatusCode.OK
    assert [dict(link.attributes or {}) for link in renamed.links] == [{"why": "self"}]
    assert "late" not in (renamed.attributes or {})
    assert "Setting attribute on ended span." in caplog.text


def test_a_custom_root_sampler_is_asked_about_the_turn_only() -> None:
    sampler = CountingSampler()
    exporter = traced(sampler=ParentBased(sampler))
    assert _hooks.observer._fast() is not None  # type: ignore[attr-defined]
    one_turn(TracerProvider().get_tracer("the-app"))
    assert sampler.calls == ["tac.turn"]  # its children: ALWAYS_ON, as ParentBased asks
    spans = exporter.get_finished_spans()
    assert len(spans) == 9
    assert all(isinstance(span, FastSpan) for span in spans)


def test_a_batch_processor_queues_what_a_simple_one_exports() -> None:
    batched, simple = InMemorySpanExporter(), InMemorySpanExporter()
    tracer_provider = TracerProvider(id_generator=SequentialIds())
    tracer_provider.add_span_processor(BatchSpanProcessor(batched))
    tracer_provider.add_span_processor(SimpleSpanProcessor(simple))
    observability.enable_tracing(tracer_provider)
    assert _hooks.observer._fast() is not None  # type: ignore[attr-defined]
    one_turn(TracerProvider().get_tracer("the-app"))
    assert tracer_provider.force_flush()
    spans = simple.get_finished_spans()
    assert len(spans) == 9
    assert sorted(shape(batched.get_finished_spans())) == sorted(shape(spans))
    tracer_provider.shutdown()


def test_a_recorded_but_unsampled_turn_reaches_no_exporter() -> None:
    batched, simple = InMemorySpanExporter(), InMemorySpanExporter()
    sampler = ParentBased(StaticSampler(Decision.RECORD_ONLY))
    tracer_provider = TracerProvider(sampler=sampler)
    tracer_provider.add_span_processor(BatchSpanProcessor(batched))
    tracer_provider.add_span_processor(SimpleSpanProcessor(simple))
    observability.enable_tracing(tracer_provider)
    turn = _hooks.observer.turn_begin("sms", "conv_1")
    assert turn is not None
    assert isinstance(turn.span, FastSpan)
    assert turn.span.is_recording()
    with _hooks.observer.stage("tac.claim"):
        pass
    _hooks.observer.turn_end(turn)
    assert tracer_provider.force_flush()
    assert batched.get_finished_spans() == simple.get_finished_spans() == ()
    tracer_provider.shutdown()


def test_a_shut_down_batch_processor_takes_no_more_spans() -> None:
    batched = InMemorySpanExporter()
    processor = BatchSpanProcessor(batched)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(processor)
    observability.enable_tracing(tracer_provider)
    turn = _hooks.observer.turn_begin("sms", "conv_1")
    assert isinstance(turn.span if turn else None, FastSpan)
    processor.shutdown()  # type: ignore[no-untyped-call]  # the SDK's is untyped
    _hooks.observer.turn_end(turn)
    assert processor._batch_processor._queue.maxlen is not None
    assert len(processor._batch_processor._queue) == 0
    assert batched.get_finished_spans() == ()


def test_a_batch_processor_from_another_process_is_reset_before_queueing() -> None:
    """After a fork the SDK's processor starts a new queue and worker; opentac's spans go
    through that reset too (here: the processor believes it was made by another process)."""
    batched = InMemorySpanExporter()
    processor = BatchSpanProcessor(batched)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(processor)
    observability.enable_tracing(tracer_provider)
    batch = processor._batch_processor
    batch._pid = -1
    worker = batch._worker_thread
    turn = _hooks.observer.turn_begin("sms", "conv_1")
    with _hooks.observer.stage("tac.claim"):
        pass
    _hooks.observer.turn_end(turn)
    assert batch._worker_thread is not worker  # the SDK's _at_fork_reinit ran
    assert batch._pid == os.getpid()
    assert tracer_provider.force_flush()
    assert sorted(span.name for span in batched.get_finished_spans()) == ["tac.claim", "tac.turn"]
    tracer_provider.shutdown()


def test_a_batch_processor_wakes_its_worker_when_a_batch_is_full() -> None:
    batched = InMemorySpanExporter()
    processor = BatchSpanProcessor(batched, max_export_batch_size=4, schedule_delay_millis=60_000)
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(processor)
    observability.enable_tracing(tracer_provider)
    for _ in range(2):
        turn = _hooks.observer.turn_begin("sms", "conv_1")
        with _hooks.observer.stage("tac.claim"):
            pass
        _hooks.observer.turn_end(turn)
    deadline = time.monotonic() + 10
    while len(batched.get_finished_spans()) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(batched.get_finished_spans()) == 4  # exported without a flush: the worker woke
    tracer_provider.shutdown()
