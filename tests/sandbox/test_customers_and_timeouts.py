"""Simulated customers on every messaging channel, the agent's replies, and status timeouts."""

from typing import Any

import httpx
import pytest
from sandbox_receiver import Receiver

from tac.sandbox import Customer, Sandbox, SandboxError

pytestmark = pytest.mark.integration


async def _reply(sb: Sandbox, conversation_id: str, text: str) -> dict[str, Any]:
    """Answer as the agent does: SEND_MESSAGE from the AI_AGENT to the CUSTOMER."""
    async with httpx.AsyncClient(auth=(sb.identity.api_key, sb.identity.api_secret)) as http:
        base = f"{sb.url}/conversations/v2/Conversations/{conversation_id}"
        participants = (await http.get(f"{base}/Participants")).json()["participants"]
        agent = next(p for p in participants if p["type"] == "AI_AGENT")
        customer = next(p for p in participants if p["type"] == "CUSTOMER")
        channel = customer["addresses"][0]["channel"]
        payload: dict[str, Any] = {
            "from": {"participantId": agent["id"], "channel": channel},
            "to": [{"participantId": customer["id"], "channel": channel}],
            "content": {"text": text},
        }
        chat_id = customer["addresses"][0].get("channelId")
        if chat_id:
            payload["channelSettings"] = {"channelId": chat_id}
        response = await http.post(
            f"{base}/Actions", json={"type": "SEND_MESSAGE", "payload": payload}
        )
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize(
    ("channel", "prefix", "agent_attr"),
    [
        ("sms", "+1", "phone_number"),
        ("whatsapp", "whatsapp:+1", "whatsapp_number"),
        ("rcs", "rcs:+1", "rcs_sender_id"),
        ("chat", "web-visitor-", None),
    ],
)
async def test_first_message_creates_the_conversation_like_twilio(
    sb: Sandbox, receiver: Receiver, channel: str, prefix: str, agent_attr: str | None
) -> None:
    customer = sb.customer(channel)
    assert customer.address.startswith(prefix)
    sent = await customer.send("Can I change my delivery address?")
    assert sent.text == "Can I change my delivery address?"
    assert sent.author == customer.address
    events = await receiver.wait_for(4)
    assert [e.event_type for e in events] == [
        "CONVERSATION_CREATED",
        "PARTICIPANT_ADDED",
        "PARTICIPANT_ADDED",
        "COMMUNICATION_CREATED",
    ]
    wire = channel.upper()
    customer_p, agent_p = events[1].json["data"], events[2].json["data"]
    assert customer_p["type"] == "CUSTOMER"
    assert customer_p["addresses"][0]["address"] == customer.address
    assert customer_p["addresses"][0]["channel"] == wire
    expected_agent = getattr(sb.identity, agent_attr) if agent_attr else "ai-assistant"
    assert agent_p["addresses"] == [{"channel": wire, "address": expected_agent}]
    message = events[3].json["data"]
    assert message["author"]["channel"] == wire
    assert message["conversationId"] == customer.conversation_id
    if channel == "chat":
        assert message["channelId"].startswith("CH")
        assert message["channelId"] == customer_p["addresses"][0]["channelId"]
        assert "resourceId" not in message
    else:
        assert message["channelId"].startswith("SM")


async def test_later_messages_reuse_the_conversation(sb: Sandbox) -> None:
    customer = sb.customer("whatsapp")
    first = await customer.send("hola")
    second = await customer.send("¿tienen envío gratis?")
    assert first.conversation_id == second.conversation_id
    other = await sb.customer("whatsapp").send("hi")
    assert other.conversation_id != first.conversation_id
    sms_same_number = await sb.customer("sms", customer.address.removeprefix("whatsapp:")).send(
        "hi"
    )
    assert sms_same_number.conversation_id != first.conversation_id
    listed = await sb.client.conversations()
    assert len(listed) == 3
    assert {c["status"] for c in listed} == {"ACTIVE"}


async def test_agent_reply_reaches_the_customer(sb: Sandbox, receiver: Receiver) -> None:
    customer = sb.customer("sms")
    await customer.send("Where is my order #4521?")
    assert customer.conversation_id is not None
    await _reply(sb, customer.conversation_id, "It shipped Monday.")
    await _reply(sb, customer.conversation_id, "It arrives tomorrow.")
    first = await customer.next_reply(timeout=5)
    second = await customer.next_reply(timeout=5)
    assert (first.text, second.text) == ("It shipped Monday.", "It arrives tomorrow.")
    assert first.author == sb.identity.phone_number
    assert first.seq < second.seq
    with pytest.raises(TimeoutError, match="no reply"):
        await customer.next_reply(timeout=0.05)
    outbound = await receiver.wait_for(2, "COMMUNICATION_UPDATED")
    assert outbound[0].json["data"]["recipients"][0]["deliveryStatus"] == "DELIVERED"
    created = receiver.of("COMMUNICATION_CREATED")
    assert created[1].json["data"]["author"]["address"] == sb.identity.phone_number
    assert created[1].json["data"]["recipients"][0]["deliveryStatus"] == "IN_PROGRESS"


async def test_chat_reply_and_ask(sb: Sandbox) -> None:
    customer = sb.customer("chat", "web-visitor-7f3a")
    await customer.send("hello")
    assert customer.conversation_id is not None
    await _reply(sb, customer.conversation_id, "Hi there!")
    assert (await customer.next_reply(timeout=5)).text == "Hi there!"


async def test_replies_to_another_customer_are_not_mine(sb: Sandbox) -> None:
    me, them = sb.customer("sms"), sb.customer("sms")
    await me.send("hi")
    await them.send("hi")
    assert them.conversation_id is not None
    await _reply(sb, them.conversation_id, "for them")
    with pytest.raises(TimeoutError):
        await me.next_reply(timeout=0.05)
    assert (await them.next_reply(timeout=5)).text == "for them"


async def test_messages_long_poll(sb: Sandbox) -> None:
    customer = sb.customer("rcs")
    await customer.send("one")
    assert customer.conversation_id is not None
    messages = await sb.client.messages(customer.conversation_id)
    assert [m["content"]["text"] for m in messages] == ["one"]
    assert await sb.client.messages(customer.conversation_id, after=messages[-1]["seq"]) == []
    await _reply(sb, customer.conversation_id, "two")
    later = await sb.client.messages(customer.conversation_id, after=messages[-1]["seq"], wait=5)
    assert [m["content"]["text"] for m in later] == ["two"]


async def test_control_api_rejects_bad_customer_requests(sb: Sandbox) -> None:
    with pytest.raises(SandboxError) as caught:
        await sb.client.customer_send("fax", "hi")
    assert caught.value.status == 400
    assert "channel" in caught.value.body["message"]
    with pytest.raises(SandboxError) as caught:
        await sb.client.request("POST", "/sandbox/customers/sms/messages", json={"text": ""})
    assert "text" in caught.value.body["message"]
    with pytest.raises(ValueError, match="channel"):
        Customer(sb.client, "voice")


async def test_reset_forgets_everything_but_the_identity(sb: Sandbox) -> None:
    await sb.customer("sms").send("hi")
    await sb.client.set_webhook_faults(latency_ms=5)
    await sb.reset()
    assert await sb.client.conversations() == []
    assert await sb.client.deliveries() == []
    faults = await sb.client.request("GET", "/sandbox/webhooks/faults")
    assert faults["latency_ms"] == 0
    again = await sb.customer("sms").send("hi again")
    assert again.conversation_id
    env = await sb.client.env()
    assert env["TWILIO_API_KEY"] == sb.identity.api_key


async def test_timeouts_fire_inactive_then_closed(sandbox_factory: Any, receiver: Receiver) -> None:
    sb: Sandbox = await sandbox_factory(app_url=receiver.url, status_timeout_unit_seconds=0.005)
    customer = sb.customer("sms")
    await customer.send("hello")  # default SMS timeouts: inactive 5, closed 30 (x 0.005 s)
    updates = await receiver.wait_for(2, "CONVERSATION_UPDATED")
    assert [u.json["data"]["status"] for u in updates] == ["INACTIVE", "CLOSED"]
    assert updates[0].json["data"]["id"] == customer.conversation_id
    assert set(updates[0].json["data"]) == {
        "id",
        "accountId",
        "configurationId",
        "status",
        "name",
        "createdAt",
        "updatedAt",
    }
    listed = await sb.client.conversations(status="CLOSED")
    assert [c["id"] for c in listed] == [customer.conversation_id]
    closed_id = customer.conversation_id
    again = await customer.send("hello again")
    assert again.conversation_id != closed_id  # CLOSED is final


async def test_a_message_reactivates_an_inactive_conversation(
    sandbox_factory: Any, receiver: Receiver
) -> None:
    sb: Sandbox = await sandbox_factory(app_url=receiver.url, status_timeout_unit_seconds=0.05)
    config_id = sb.identity.conversation_configuration_id
    await sb.client.request(
        "PATCH",
        f"/conversations/v2/ControlPlane/Configurations/{config_id}",
        json={"channelSettings": {"SMS": {"statusTimeouts": {"inactive": 1, "closed": 1000}}}},
    )
    customer = sb.customer("sms")
    first = await customer.send("hello")
    await receiver.wait_for(1, "CONVERSATION_UPDATED")
    second = await customer.send("still there?")
    assert second.conversation_id == first.conversation_id
    updates = await receiver.wait_for(2, "CONVERSATION_UPDATED")
    assert [u.json["data"]["status"] for u in updates[:2]] == ["INACTIVE", "ACTIVE"]


async def test_timeouts_publish_status_changes_on_the_bus(sb: Sandbox) -> None:
    assert sb.app is not None
    seen: list[dict[str, Any]] = []
    sb.app.state.sandbox.bus.subscribe("conversation.status_changed", seen.append)
    customer = sb.customer("sms")
    await customer.send("hello")
    assert customer.conversation_id is not None
    await sb.client.request(
        "PUT",
        f"/conversations/v2/Conversations/{customer.conversation_id}",
        json={"status": "CLOSED"},
    )
    assert [(s["previous_status"], s["status"]) for s in seen] == [("ACTIVE", "CLOSED")]
    assert [c["content"]["text"] for c in seen[0]["communications"]] == ["hello"]
    assert len(seen[0]["participants"]) == 2


async def test_customer_can_arrive_unresolved(sb: Sandbox, receiver: Receiver) -> None:
    customer = sb.customer("sms", participant_type="UNKNOWN")
    await customer.send("hi")
    added = await receiver.wait_for(2, "PARTICIPANT_ADDED")
    assert [a.json["data"]["type"] for a in added] == ["UNKNOWN", "AI_AGENT"]
    assert "profileId" not in added[0].json["data"]
    assert (await customer.send("again")).conversation_id == customer.conversation_id
    with pytest.raises(SandboxError) as caught:
        await sb.client.customer_send("sms", "hi", participant_type="AGENT")
    assert "participantType" in caught.value.body["message"]
