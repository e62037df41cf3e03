"""Prometheus metrics from a running app: SMS and voice turns against the sandbox, scraped over
HTTP from ``/metrics``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import uuid
from typing import Any

import httpx
import pytest
from tests._redis import REDIS_URL, redis_listening
from tests.observability._app import observed_app, sample
from twilio.request_validator import RequestValidator

from tac import TAC, TACConfig, observability
from tac.channels import SMSChannel
from tac.models import DeliveryStatus
from tac.models.session import ConversationSession
from tac.observability import _hooks
from tac.observability._labels import operation_label
from tac.server import TACFastAPIServer, TACServerConfig

pytestmark = pytest.mark.integration


async def echo(message: str, session: ConversationSession, memory: Any) -> str:
    return f"echo: {message}"


async def until(check: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_sms_and_voice_turns_are_measured() -> None:
    async with observed_app(echo) as app:
        before = await app.scrape()
        customer = app.sandbox.customer("sms")
        assert (await customer.ask("hi", timeout=5)).text == "echo: hi"
        async with app.sandbox.caller() as caller:
            await caller.dial()
            assert (await caller.ask("hello there", timeout=5)).text == "echo: hello there"
            calls_during = sample(await app.scrape(), "tac_active_calls")
            await caller.hang_up()

        async def settled() -> bool:
            text = await app.scrape()
            return sample(text, "tac_active_calls") == calls_during - 1

        await until(settled)
        after = await app.scrape()

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert calls_during >= 1
    assert delta("tac_turn_duration_seconds_count", channel="sms", outcome="replied") == 1
    assert delta("tac_turn_duration_seconds_count", channel="voice", outcome="replied") == 1
    assert delta("tac_turn_first_token_seconds_count", channel="voice") == 1
    assert delta("tac_time_to_callback_seconds_count", channel="sms") == 1
    assert delta("tac_time_to_callback_seconds_count", channel="voice") == 1
    assert delta("tac_webhooks_total", outcome="answered") >= 1
    assert delta("tac_sessions_ended_total", channel="voice", reason="call_ended") == 1
    sent = delta(
        "tac_twilio_requests_total",
        product="conversations",
        operation="POST /v2/Conversations/{id}/Actions",
        status="202",
    )
    assert sent == 1
    # the Twilio latency histogram has the same series, and no id or address is a label
    assert (
        delta(
            "tac_twilio_request_duration_seconds_count",
            product="conversations",
            operation="POST /v2/Conversations/{id}/Actions",
        )
        == 1
    )
    assert customer.conversation_id is not None
    assert customer.conversation_id not in after
    assert "+1" not in "".join(line for line in after.splitlines() if line.startswith("tac_"))
    assert app.errors == []


async def test_webhook_outcomes_are_counted() -> None:
    async with observed_app(echo) as app:
        before = await app.scrape()
        url = f"{app.url}/webhook"
        async with httpx.AsyncClient() as http:
            forged = await http.post(url, content=b"{}", headers={"X-Twilio-Signature": "bad"})
            body = b"not json"
            signed = _signed(app, body)
            malformed = await http.post(signed[0], content=body, headers=signed[1])
            large = await http.post(url, content=b"x" * (2 << 20))
            event = json.dumps({"eventType": "SOMETHING_NEW", "data": {}}).encode()
            target, headers = _signed(app, event)
            ignored = await http.post(target, content=event, headers=headers)
        after = await app.scrape()
    assert (forged.status_code, malformed.status_code, large.status_code) == (403, 400, 413)
    assert ignored.status_code == 200
    for outcome in ("forged", "malformed", "too_large", "ignored"):
        assert (
            sample(after, "tac_webhooks_total", outcome=outcome)
            - sample(before, "tac_webhooks_total", outcome=outcome)
            == 1
        ), outcome


async def test_duplicate_webhook_counted_once_as_a_turn() -> None:
    turns: list[str] = []

    async def agent(message: str, session: ConversationSession, memory: Any) -> None:
        turns.append(message)

    async with observed_app(agent) as app:
        before = await app.scrape()
        body = json.dumps(
            {
                "eventType": "COMMUNICATION_CREATED",
                "data": {
                    "id": "comm_1",
                    "conversationId": "conv_missing",
                    "author": {"address": "+14155550199", "channel": "SMS"},
                    "content": {"type": "TEXT", "text": "hello"},
                },
            }
        ).encode()
        target, headers = _signed(app, body)
        async with httpx.AsyncClient() as http:
            first = await http.post(target, content=body, headers=headers)
            second = await http.post(target, content=body, headers=headers)
        after = await app.scrape()
    assert first.json() == {"status": "ok"}
    assert second.json() == {"status": "duplicate"}
    assert (
        sample(after, "tac_webhooks_total", outcome="duplicate")
        - sample(before, "tac_webhooks_total", outcome="duplicate")
        == 1
    )


async def test_failed_delivery_reaches_the_callback_and_the_metric() -> None:
    statuses: list[tuple[ConversationSession, DeliveryStatus]] = []
    async with observed_app(echo) as app:

        @app.tac.on_delivery_status
        async def on_status(session: ConversationSession, status: DeliveryStatus) -> None:
            statuses.append((session, status))

        customer = app.sandbox.customer("sms")
        reply = await customer.ask("hi", timeout=5)
        assert reply.text == "echo: hi"
        before = await app.scrape()
        agent = app.sandbox.env["TWILIO_PHONE_NUMBER"]
        event = {
            "eventType": "COMMUNICATION_UPDATED",
            "data": {
                "id": "comm_failed_1",
                "conversationId": customer.conversation_id,
                "author": {"address": agent, "channel": "SMS"},
                "content": {"type": "TEXT", "text": "echo: hi"},
                "recipients": [
                    {"address": customer.address, "channel": "SMS", "deliveryStatus": "FAILED"}
                ],
            },
        }
        body = json.dumps(event).encode()
        target, headers = _signed(app, body, token="tok-failed")
        async with httpx.AsyncClient() as http:
            answer = await http.post(target, content=body, headers=headers)
            assert answer.json() == {"status": "ok"}
            # a redelivery is dropped by the claim: the callback hears of it once
            await http.post(target, content=body, headers=headers)

        async def called() -> bool:
            return bool(statuses)

        await until(called)
        after = await app.scrape()
    assert len(statuses) == 1
    session, status = statuses[0]
    assert session.conversation_id == customer.conversation_id
    assert status.status == "FAILED"
    assert status.channel == "sms"
    assert status.address == customer.address
    assert status.communication_id == "comm_failed_1"
    assert status.text == "echo: hi"
    assert (
        sample(after, "tac_delivery_status_total", channel="sms", status="failed")
        - sample(before, "tac_delivery_status_total", channel="sms", status="failed")
        == 1
    )
    # the sandbox's own DELIVERED updates are counted without a claim or a callback
    assert sample(after, "tac_delivery_status_total", channel="sms", status="delivered") >= 1


async def test_metrics_route_is_absent_when_disabled() -> None:
    async with observed_app(echo, metrics=False) as app:
        async with httpx.AsyncClient() as http:
            response = await http.get(app.url + "/metrics")
        assert response.status_code == 404
        assert not observability.metrics_enabled()
        assert type(_hooks.observer) is _hooks.Observer


async def test_metrics_path_is_configurable() -> None:
    async with observed_app(echo, metrics_path="/internal/prom") as app:
        text = await app.scrape("/internal/prom")
    assert "# TYPE tac_turn_duration_seconds histogram" in text


def test_server_config_reads_the_environment() -> None:
    config = TACServerConfig.from_env(
        {
            "TAC_METRICS_ENABLED": "true",
            "TAC_METRICS_PATH": "/m",
            "TAC_TRACING_ENABLED": "1",
        }
    )
    assert (config.metrics_enabled, config.metrics_path, config.tracing_enabled) == (
        True,
        "/m",
        True,
    )
    defaults = TACServerConfig.from_env({})
    assert (defaults.metrics_enabled, defaults.tracing_enabled) == (False, False)


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        (
            "POST",
            "/v2/Conversations/conv_conversation_01abc/Actions",
            "POST /v2/Conversations/{id}/Actions",
        ),
        (
            "GET",
            "/2010-04-01/Accounts/AC109031c05318848ba78ba04165baaad1/Calls/CA1234.json",
            "GET /2010-04-01/Accounts/{id}/Calls/{id}",
        ),
        ("POST", "/v1/Stores/mem_store_1/Profiles/Lookup", "POST /v1/Stores/{id}/Profiles/Lookup"),
        ("GET", "/v2/Conversations?channelId=CA1", "GET /v2/Conversations"),
    ],
)
def test_operation_labels_hold_no_ids(method: str, path: str, expected: str) -> None:
    assert operation_label(method, path) == expected


def _signed(app: Any, body: bytes, token: str = "tok-1") -> tuple[str, dict[str, str]]:
    url = f"{app.url}/webhook?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = RequestValidator(app.tac.config.auth_token).compute_signature(url, {})
    return url, {
        "X-Twilio-Signature": signature,
        "I-Twilio-Idempotency-Token": token,
        "Content-Type": "application/json",
    }


def test_no_label_value_is_unbounded() -> None:
    assert re.fullmatch(r"[A-Z]+ [/{}\w.-]*", operation_label("GET", "/v1/x/1/y"))


def test_label_values_stay_in_their_sets() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    observability.enable_metrics(registry)
    observer = _hooks.observer
    observer.websocket_closed(4999)
    observer.websocket_closed(None)
    observer.websocket_failure("something new")
    observer.delivery_status("SMS", "carrier-specific-status-123")
    observer.delivery_status("pigeon", "DELIVERED")
    observer.session_started("sms")
    observer.session_ended("sms", "ended by conv_conversation_123 at 12:00")
    observer.error({"channel": "voice", "reply_uncertain": True})
    text = generate_latest(registry).decode()
    assert sample(text, "tac_websocket_closes_total", code="other") == 1
    assert sample(text, "tac_websocket_closes_total", code="lost") == 1
    assert sample(text, "tac_websocket_failures_total", reason="other") == 1
    assert sample(text, "tac_delivery_status_total", channel="sms", status="other") == 1
    assert sample(text, "tac_delivery_status_total", channel="other", status="delivered") == 1
    assert sample(text, "tac_sessions_ended_total", channel="sms", reason="other") == 1
    assert sample(text, "tac_active_sessions", channel="sms") == 0
    assert sample(text, "tac_reply_uncertain_total", channel="voice") == 1
    # a second enable on the same registry reuses the metrics (no duplicate registration)
    assert observability.enable_metrics(registry) is registry


async def test_voice_interrupts_close_codes_and_call_statuses_are_counted() -> None:
    async def slow(message: str, session: ConversationSession, memory: Any) -> Any:
        async def tokens() -> Any:
            yield "one "
            await asyncio.sleep(30)  # talked over long before this ends
            yield "two"

        return tokens()

    async with observed_app(slow) as app:
        before = await app.scrape()
        async with app.sandbox.caller() as caller:
            await caller.dial()
            await caller.say("start")
            await asyncio.sleep(0.2)
            await caller.interrupt()
            await caller.hang_up()
        status_path = app.tac.config.call_event_path("status")
        form = {
            "CallSid": "CA" + "1" * 32,
            "AccountSid": app.tac.config.account_sid,
            "CallStatus": "busy",
        }
        url = app.url + status_path
        signature = RequestValidator(app.tac.config.auth_token).compute_signature(url, form)
        async with httpx.AsyncClient() as http:
            answer = await http.post(url, data=form, headers={"X-Twilio-Signature": signature})
        assert answer.status_code == 200

        async def closed() -> bool:
            text = await app.scrape()
            return sample(text, "tac_websocket_closes_total") > sample(
                before, "tac_websocket_closes_total"
            )

        await until(closed)
        after = await app.scrape()

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("tac_interrupts_total", channel="voice") == 1
    assert delta("tac_turn_duration_seconds_count", channel="voice", outcome="interrupted") == 1
    assert delta("tac_websocket_closes_total") == 1
    assert delta("tac_websocket_closes_total", code="1000") == 1  # the caller hung up
    assert delta("tac_delivery_status_total", channel="voice", status="busy") == 1


@pytest.mark.skipif(
    not redis_listening(), reason="no Redis on 127.0.0.1:6379 (make test starts one)"
)
async def test_durable_inbound_takeovers_and_lost_leases_are_counted() -> None:
    from tac.state.redis import RedisSessionStore

    prefix = f"tac-observe-{uuid.uuid4().hex}:"
    hung = asyncio.Event()

    async def stuck(message: str, session: ConversationSession, memory: Any) -> str:
        if message == "hello":
            return "first"
        hung.set()
        await asyncio.Event().wait()  # this instance stalls mid-turn
        return "never"

    store_a = RedisSessionStore.from_url(REDIS_URL, prefix=prefix)
    async with observed_app(stuck, session_store=store_a, lease_seconds=0.5) as app:
        customer = app.sandbox.customer("sms")
        assert (await customer.ask("hello", timeout=5)).text == "first"
        before = await app.scrape()
        await app.server.inbound.aclose()  # A stops renewing its leases
        await customer.send("are you there?")
        await asyncio.wait_for(hung.wait(), 5)
        tac_b = TAC(
            TACConfig.from_env(app.sandbox.env),
            session_store=RedisSessionStore.from_url(REDIS_URL, prefix=prefix),
        )
        tac_b.on_message_ready(lambda message, session, memory: f"B: {message}")
        server_b = TACFastAPIServer(
            tac_b,
            messaging_channels=[SMSChannel(tac_b)],
            # B's own lease outlives its turn even on a loaded machine, so A takes nothing back
            config=TACServerConfig(idempotency_lease_seconds=10),
        )
        try:
            taken = 0
            for _ in range(100):
                taken += await server_b.inbound.tick()
                if taken:
                    break
                await asyncio.sleep(0.1)
            assert taken == 1
            assert (await customer.next_reply(timeout=10)).text == "B: are you there?"
            await app.server.inbound.tick()  # A looks again: its lease is gone
            after = await app.scrape()
        finally:
            await server_b.shutdown()
    assert (
        sample(after, "tac_inbound_takeovers_total") - sample(before, "tac_inbound_takeovers_total")
        == 1
    )
    # A counts each lease the store says it lost (the stalled turn's at least)
    assert (
        sample(after, "tac_inbound_lease_expiries_total")
        - sample(before, "tac_inbound_lease_expiries_total")
        >= 1
    )
