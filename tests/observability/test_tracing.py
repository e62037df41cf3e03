"""OpenTelemetry spans, read back with the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from tests._ports import free_port
from tests.observability._app import observed_app

from tac import observability
from tac.context import TwilioHTTP
from tac.models.session import ConversationSession
from tac.observability import _hooks
from tac.observability._spans import FastSpan

pytestmark = pytest.mark.integration


class CustomProcessor(SimpleSpanProcessor):
    """The SDK's processor under another type: opentac cannot know it, so the SDK's path."""


@pytest.fixture(params=["fast", "sdk"])
def exporter(request: pytest.FixtureRequest) -> Iterator[InMemorySpanExporter]:
    """Every test here runs on both paths: opentac's fast spans and the SDK's own."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    processor = SimpleSpanProcessor if request.param == "fast" else CustomProcessor
    provider.add_span_processor(processor(exporter))
    observability.enable_tracing(provider)
    yield exporter
    fast = [
        isinstance(span, FastSpan)
        for span in exporter.get_finished_spans()
        if span.name.startswith("tac.")
    ]
    assert fast == [request.param == "fast"] * len(fast)
    observability.disable()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def until_span(exporter: InMemorySpanExporter, name: str, count: int = 1) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while len(by_name(exporter.get_finished_spans(), name)) < count:
        assert loop.time() < deadline, f"no {name} span"
        await asyncio.sleep(0.02)


async def test_an_sms_turn_is_one_trace_with_its_stages(exporter: InMemorySpanExporter) -> None:
    app_provider = TracerProvider()  # the app's own tracing, its own provider
    app_provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = app_provider.get_tracer("the-app")

    async def agent(message: str, session: ConversationSession, memory: Any) -> str:
        with tracer.start_as_current_span("llm.call") as span:
            span.set_attribute("app.model", "fake")
            return f"echo: {message}"

    async with observed_app(agent, metrics=False, memory_mode="always") as app:
        customer = app.sandbox.customer("sms")
        assert (await customer.ask("hi", timeout=5)).text == "echo: hi"
        await until_span(exporter, "tac.turn")
    spans = exporter.get_finished_spans()
    (turn,) = by_name(spans, "tac.turn")
    assert turn.attributes is not None
    assert turn.attributes["tac.channel"] == "sms"
    assert turn.attributes["tac.conversation_id"] == customer.conversation_id
    assert turn.attributes["tac.turn.outcome"] == "replied"
    stages = {span.name for span in children(spans, turn)}
    # the session is read with the claim (one round trip): no separate tac.session.load
    assert {"tac.claim", "tac.memory", "tac.callback", "tac.reply"} <= stages
    trace_ids = {span.context.trace_id for span in spans if span.context is not None}
    assert len(trace_ids) == 1  # everything of the turn is one trace
    (callback,) = by_name(spans, "tac.callback")
    (llm,) = by_name(spans, "llm.call")
    assert llm.parent is not None
    assert callback.context is not None
    assert llm.parent.span_id == callback.context.span_id  # the app's span nests inside
    (reply,) = by_name(spans, "tac.reply")
    (send,) = children(spans, reply)
    assert send.name == "POST /v2/Conversations/{id}/Actions"
    assert send.kind is SpanKind.CLIENT
    attributes = dict(send.attributes or {})
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.response.status_code"] == 202
    assert attributes["server.address"] == "127.0.0.1"
    assert str(attributes["url.full"]).startswith(app.sandbox.url)
    assert isinstance(attributes["server.port"], int)
    (memory,) = by_name(spans, "tac.memory")
    assert any(s.kind is SpanKind.CLIENT for s in children(spans, memory))


async def test_a_voice_turn_marks_its_first_token(exporter: InMemorySpanExporter) -> None:
    async def agent(message: str, session: ConversationSession, memory: Any) -> Any:
        async def tokens() -> AsyncIterator[str]:
            for token in ("one ", "two"):
                yield token

        return tokens()

    async with observed_app(agent, metrics=False) as app, app.sandbox.caller() as caller:
        await caller.dial()
        assert (await caller.ask("count", timeout=5)).text == "one two"
        await until_span(exporter, "tac.turn")
    spans = exporter.get_finished_spans()
    voice_turns = [
        s for s in by_name(spans, "tac.turn") if (s.attributes or {}).get("tac.channel") == "voice"
    ]
    (turn,) = voice_turns
    assert [event.name for event in turn.events] == ["tac.first_token"]
    conversation_id = (turn.attributes or {})["tac.conversation_id"]
    assert isinstance(conversation_id, str)
    assert conversation_id.startswith("conv_")
    assert {s.name for s in children(spans, turn)} >= {
        "tac.session.load",
        "tac.callback",
        "tac.reply",
    }


@contextlib.asynccontextmanager
async def recording_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A loopback HTTP server answering ``{}`` and recording each request's headers."""
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("transport", ["direct", "httpx"])
async def test_twilio_requests_carry_w3c_trace_context(
    exporter: InMemorySpanExporter, transport: str
) -> None:
    async with recording_server() as (url, seen):
        http = TwilioHTTP(
            api_key="SKkey",
            api_secret="secret",
            api_base_url=url,
            transport=httpx.AsyncHTTPTransport() if transport == "httpx" else None,
        )
        async with http:
            await http.request("memory", "GET", "/v1/Stores/mem_store_1/Profiles/mem_profile_2")
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /v1/Stores/{id}/Profiles/{id}"
    assert span.context is not None
    trace_id = format(span.context.trace_id, "032x")
    span_id = format(span.context.span_id, "016x")
    flags = format(span.context.trace_flags, "02x")
    assert seen[0]["traceparent"] == f"00-{trace_id}-{span_id}-{flags}"
    assert dict(span.attributes or {})["url.full"] == (
        f"{url}/memory/v1/Stores/mem_store_1/Profiles/mem_profile_2"
    )


async def test_a_failed_request_is_an_error_span(exporter: InMemorySpanExporter) -> None:
    http = TwilioHTTP(
        api_key="SKkey", api_secret="secret", api_base_url=f"http://127.0.0.1:{free_port()}"
    )
    http.retry = type(http.retry)(attempts=1)
    async with http:
        with pytest.raises(Exception, match="ConnectError"):
            await http.request("api", "GET", "/2010-04-01/Accounts/AC1/Calls.json")
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {})["error.type"] == "ConnectError"
    assert span.status.status_code.name == "ERROR"


async def test_no_spans_when_tracing_is_off() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observability.enable_tracing(provider)
    observability.disable(tracing=True)
    async with (
        recording_server() as (url, seen),
        TwilioHTTP(api_key="SKkey", api_secret="secret", api_base_url=url) as http,
    ):
        await http.request("memory", "GET", "/v1/Stores")
    assert exporter.get_finished_spans() == ()
    assert "traceparent" not in {k.lower() for k in seen[0]}


async def test_a_turn_left_out_by_the_sampler_records_nothing_but_passes_its_context() -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observability.enable_tracing(provider)
    observer = _hooks.observer
    async with recording_server() as (url, seen):
        turn = observer.turn_begin("sms", "conv_1")
        assert turn is not None
        assert observer.stage("tac.claim") is _hooks.NULL
        async with TwilioHTTP(api_key="SKkey", api_secret="secret", api_base_url=url) as http:
            await http.request("conversations", "POST", "/v2/Conversations/conv_1/Actions")
        observer.turn_end(turn)
    assert exporter.get_finished_spans() == ()
    assert int(seen[0]["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0  # not sampled
    assert turn.span is not None
    assert seen[0]["traceparent"].split("-")[1] == format(
        turn.span.get_span_context().trace_id, "032x"
    )


async def test_baggage_and_other_propagators_go_through_opentelemetry(
    exporter: InMemorySpanExporter,
) -> None:
    from opentelemetry import baggage, propagate
    from opentelemetry import context as otel_context
    from opentelemetry.propagators.textmap import default_setter
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    class Tagged(TraceContextTextMapPropagator):
        def inject(self, carrier: Any, context: Any = None, setter: Any = default_setter) -> None:
            super().inject(carrier, context, setter)
            setter.set(carrier, "x-tagged", "1")

    async with (
        recording_server() as (url, seen),
        TwilioHTTP(api_key="SKkey", api_secret="secret", api_base_url=url) as http,
    ):
        token = otel_context.attach(baggage.set_baggage("tenant", "acme"))
        try:
            await http.request("memory", "GET", "/v1/Stores")
        finally:
            otel_context.detach(token)
        default = propagate.get_global_textmap()
        propagate.set_global_textmap(Tagged())
        try:
            await http.request("memory", "GET", "/v1/Stores")
        finally:
            propagate.set_global_textmap(default)
        await http.request("memory", "GET", "/v1/Stores")
    assert seen[0]["baggage"] == "tenant=acme"
    assert seen[1]["x-tagged"] == "1"
    assert [("baggage" in s, "x-tagged" in s) for s in seen] == [
        (True, False),
        (False, True),
        (False, False),
    ]
    assert all(s["traceparent"].startswith("00-") for s in seen)


def test_a_stage_that_raises_is_an_error_span(exporter: InMemorySpanExporter) -> None:
    observer = _hooks.observer
    turn = observer.turn_begin("sms", "conv_1")
    with pytest.raises(ValueError), observer.stage("tac.claim"):
        raise ValueError("store said no")
    observer.turn_end(turn, "error")
    (claim,) = by_name(exporter.get_finished_spans(), "tac.claim")
    assert claim.status.status_code.name == "ERROR"
    assert [event.name for event in claim.events] == ["exception"]
    (turn_span,) = by_name(exporter.get_finished_spans(), "tac.turn")
    assert turn_span.status.status_code.name == "ERROR"
    assert claim.parent is not None
    assert turn_span.context is not None
    assert claim.parent.span_id == turn_span.context.span_id
