"""Webhooks as Twilio sends them: signed, tokened, ordered, redelivered, fault-injectable."""

import asyncio
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from sandbox_receiver import Receiver
from twilio.request_validator import RequestValidator

from tac.sandbox import Sandbox
from tac.testing import verify_webhook

pytestmark = pytest.mark.integration


async def test_events_are_signed_like_twilio(sb: Sandbox, receiver: Receiver) -> None:
    await sb.customer("sms").send("Hi, where is my order?")
    received = await receiver.wait_for(4)
    validator = RequestValidator(sb.identity.auth_token)
    for request in received:
        query = parse_qs(urlsplit(request.url).query)
        assert query["bodySHA256"] == [hashlib.sha256(request.body).hexdigest()]
        signature = request.headers["x-twilio-signature"]
        assert validator.validate(request.url, request.body.decode(), signature)
        assert verify_webhook(sb.identity.auth_token, request.url, request.body, request.headers)
        assert request.headers["content-type"] == "application/json"
        assert request.headers["i-twilio-idempotency-token"]
    tampered = received[0].body.replace(b"ACTIVE", b"CLOSED")
    assert not validator.validate(received[0].url, tampered.decode(), signature)


async def test_first_message_fires_events_in_order_with_resource_shapes(
    sb: Sandbox, receiver: Receiver
) -> None:
    customer = sb.customer("sms", "+14155550123")
    await customer.send("Hi, where is my order #4521?")
    received = await receiver.wait_for(4)
    assert [r.event_type for r in received] == [
        "CONVERSATION_CREATED",
        "PARTICIPANT_ADDED",
        "PARTICIPANT_ADDED",
        "COMMUNICATION_CREATED",
    ]
    created = received[0].json
    assert set(created) == {"eventType", "timestamp", "data"}
    assert created["timestamp"].endswith("Z")
    assert "." in created["timestamp"]
    conversation = created["data"]
    assert set(conversation) == {
        "id",
        "accountId",
        "configurationId",
        "status",
        "name",
        "createdAt",
        "updatedAt",
    }
    assert conversation["configurationId"] == sb.identity.conversation_configuration_id
    assert conversation["accountId"] == sb.identity.account_sid
    customer_p, agent_p = (r.json["data"] for r in received[1:3])
    assert customer_p["type"] == "CUSTOMER"
    assert customer_p["addresses"] == [{"channel": "SMS", "address": "+14155550123"}]
    assert agent_p["type"] == "AI_AGENT"
    assert agent_p["addresses"] == [{"channel": "SMS", "address": sb.identity.phone_number}]
    message = received[3].json["data"]
    assert message["author"] == {
        "address": "+14155550123",
        "channel": "SMS",
        "participantId": customer_p["id"],
    }
    assert message["content"] == {"type": "TEXT", "text": "Hi, where is my order #4521?"}
    assert message["channelId"].startswith("SM")
    assert len(message["channelId"]) == 34
    assert message["resourceId"] == message["channelId"]
    assert message["recipients"] == [
        {
            "address": sb.identity.phone_number,
            "channel": "SMS",
            "participantId": agent_p["id"],
            "deliveryStatus": "DELIVERED",
        }
    ]
    tokens = {r.headers["i-twilio-idempotency-token"] for r in received}
    assert len(tokens) == 4


async def test_redelivery_keeps_the_token(sb: Sandbox, receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    await sb.client.set_webhook_policy(attempts=4, base_delay_seconds=0.01)
    await sb.customer("sms").send("hello")
    attempts = await receiver.wait_for(3, "CONVERSATION_CREATED")
    assert len({a.headers["i-twilio-idempotency-token"] for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1
    records = await sb.client.deliveries(event_type="CONVERSATION_CREATED", min_count=3, wait=5)
    assert [(r["attempt"], r["outcome"], r["statusCode"]) for r in records] == [
        (1, "failed", 500),
        (2, "failed", 503),
        (3, "delivered", 200),
    ]
    assert all(r["token"] == records[0]["token"] for r in records)
    assert all(r["latencyMs"] >= 0 for r in records)


async def test_timeout_counts_as_failure_and_is_redelivered(
    sb: Sandbox, receiver: Receiver
) -> None:
    hold = asyncio.Event()
    receiver.holds = [hold]  # the first request hangs until the test ends
    await sb.client.set_webhook_policy(attempts=2, base_delay_seconds=0.0, timeout_seconds=0.2)
    await sb.customer("sms").send("hello")
    await receiver.wait_for(2, "CONVERSATION_CREATED")
    records = await sb.client.deliveries(event_type="CONVERSATION_CREATED", min_count=2, wait=5)
    hold.set()
    assert records[0]["outcome"] == "failed"
    assert "timed out" in records[0]["error"]
    assert records[0]["statusCode"] is None
    assert records[1]["outcome"] == "delivered"
    assert records[0]["token"] == records[1]["token"]


async def test_give_up_is_recorded_and_later_events_still_flow(
    sb: Sandbox, receiver: Receiver
) -> None:
    receiver.statuses = [500, 500]
    await sb.client.set_webhook_policy(attempts=2, base_delay_seconds=0.0)
    await sb.customer("sms").send("hello")
    assert await sb.client.webhooks_idle(wait=5)
    gave_up = await sb.client.deliveries(outcome="gave_up")
    assert [r["eventType"] for r in gave_up] == ["CONVERSATION_CREATED"]
    assert gave_up[0]["attempt"] == 2
    delivered = await sb.client.deliveries(outcome="delivered")
    assert [r["eventType"] for r in delivered] == [
        "PARTICIPANT_ADDED",
        "PARTICIPANT_ADDED",
        "COMMUNICATION_CREATED",
    ]


async def test_unreachable_app_gives_up_with_an_error(sandbox_factory) -> None:
    sb: Sandbox = await sandbox_factory(app_url="http://127.0.0.1:9", webhook_attempts=1)
    await sb.customer("chat").send("anyone there?")
    assert await sb.client.webhooks_idle(wait=5)
    records = await sb.client.deliveries(event_type="CONVERSATION_CREATED")
    assert records[0]["outcome"] == "gave_up"
    assert records[0]["error"]
    assert records[0]["url"] == "http://127.0.0.1:9/webhook"


async def test_duplicate_fault_sends_the_same_token_twice(sb: Sandbox, receiver: Receiver) -> None:
    await sb.client.set_webhook_faults(duplicate_rate=1.0)
    await sb.customer("sms").send("hello")
    created = await receiver.wait_for(2, "CONVERSATION_CREATED")
    assert (
        created[0].headers["i-twilio-idempotency-token"]
        == created[1].headers["i-twilio-idempotency-token"]
    )
    assert created[0].body == created[1].body
    records = await sb.client.deliveries(event_type="CONVERSATION_CREATED")
    assert [r["duplicate"] for r in records] == [False, True]


async def test_drop_fault_loses_events_and_records_them(sb: Sandbox, receiver: Receiver) -> None:
    await sb.client.set_webhook_faults(drop_rate=1.0)
    await sb.customer("sms").send("hello")
    assert await sb.client.webhooks_idle(wait=5)
    records = await sb.client.deliveries()
    assert {r["outcome"] for r in records} == {"dropped"}
    assert len(records) == 4
    assert receiver.received == []
    await sb.client.clear_webhook_faults()
    await sb.customer("sms").send("again")
    await receiver.wait_for(1)


async def test_latency_fault_delays_delivery(sb: Sandbox, receiver: Receiver) -> None:
    await sb.client.set_webhook_faults(latency_ms=30)
    faults = await sb.client.request("GET", "/sandbox/webhooks/faults")
    assert faults["latency_ms"] == 30
    await sb.customer("sms").send("hello")
    await receiver.wait_for(4)
    records = await sb.client.deliveries(min_count=4, wait=5)
    assert all(r["latencyMs"] >= 30 for r in records)  # the injected latency is part of it


async def test_per_conversation_callbacks_and_clearing(sb: Sandbox, receiver: Receiver) -> None:
    customer = sb.customer("sms")
    await customer.send("hello")
    await receiver.wait_for(4)
    conversation_id = customer.conversation_id
    other = f"{receiver.url}/webhook?conversation=mine"
    await sb.client.request(
        "PATCH",
        f"/conversations/v2/Conversations/{conversation_id}",
        json={"configuration": {"statusCallbacks": [{"url": other, "method": "POST"}]}},
    )
    await customer.send("second")
    routed = await receiver.wait_for(5)
    assert routed[-1].url.startswith(other + "&bodySHA256=")
    assert verify_webhook(
        sb.identity.auth_token, routed[-1].url, routed[-1].body, routed[-1].headers
    )

    await sb.client.request(
        "PATCH",
        f"/conversations/v2/Conversations/{conversation_id}",
        json={"configuration": {"statusCallbacks": []}},
    )
    await customer.send("third, after the handoff")
    assert await sb.client.webhooks_idle(wait=5)
    assert len(receiver.received) == 5
    messages = await sb.client.messages(conversation_id)
    assert [m["content"]["text"] for m in messages] == [
        "hello",
        "second",
        "third, after the handoff",
    ]


async def test_bad_fault_and_policy_values_are_400(sb: Sandbox) -> None:
    from tac.sandbox import SandboxError

    with pytest.raises(SandboxError) as caught:
        await sb.client.set_webhook_faults(drop_rate=2)
    assert caught.value.status == 400
    assert "drop_rate" in caught.value.body["message"]
    with pytest.raises(SandboxError) as caught:
        await sb.client.set_webhook_policy(attempts=0)
    assert "attempts" in caught.value.body["message"]


async def test_get_callbacks_are_signed_over_the_url(sb: Sandbox, receiver: Receiver) -> None:
    conversation = await sb.client.request(
        "POST",
        "/conversations/v2/Conversations",
        json={
            "configurationId": sb.identity.conversation_configuration_id,
            "configuration": {
                "statusCallbacks": [{"url": f"{receiver.url}/webhook?via=get", "method": "GET"}]
            },
        },
    )
    (received,) = await receiver.wait_for(1)
    assert received.url == f"{receiver.url}/webhook?via=get"
    assert received.body == b""
    validator = RequestValidator(sb.identity.auth_token)
    assert validator.validate(received.url, {}, received.headers["x-twilio-signature"])
    records = await sb.client.deliveries(conversation_id=conversation["id"])
    assert [r["outcome"] for r in records] == ["delivered"]
