"""Memory per mode, trait freshness, fallback and participant reconciliation, end to end."""

from __future__ import annotations

from typing import Any

import pytest
from messaging_helpers import eventually

from tac.channels import ChatChannel, SMSChannel, SMSChannelConfig, WhatsAppChannel
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse

pytestmark = pytest.mark.integration


class Agent:
    def __init__(self) -> None:
        self.turns: list[tuple[str, ConversationSession, Any]] = []

    async def __call__(self, message: str, session: ConversationSession, memory: Any) -> str:
        self.turns.append((message, session.model_copy(deep=True), memory))
        return f"echo: {message}"


async def _memory_requests(app: Any) -> list[str]:
    records = await app.sandbox.client.requests(product="memory")
    return [r["path"].rsplit("/", 1)[-1] for r in records if r["method"] in ("GET", "POST")]


def _kinds(paths: list[str]) -> dict[str, int]:
    recall = sum(1 for p in paths if p == "Recall")
    return {"recall": recall, "profile": sum(1 for p in paths if p.startswith("mem_profile"))}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("never", {"recall": 0, "profile": 0}),
        ("once", {"recall": 1, "profile": 1}),
        ("always", {"recall": 3, "profile": 3}),
    ],
)
async def test_memory_calls_per_mode(start_app, mode: str, expected: dict[str, int]) -> None:
    agent = Agent()
    app = await start_app(
        lambda tac: [SMSChannel(tac, SMSChannelConfig(memory_mode=mode))], reply=agent
    )
    customer = app.sandbox.customer("sms")
    for text in ("one", "two", "three"):
        await customer.ask(text, timeout=5)
    assert _kinds(await _memory_requests(app)) == expected
    for _, session, memory in agent.turns:
        assert session.profile_id is not None
        if mode == "never":
            assert memory is None
        else:
            assert isinstance(memory, TACMemoryResponse)
            assert memory


async def test_inactive_forgets_the_once_cache(start_app) -> None:
    agent = Agent()
    app = await start_app(
        lambda tac: [SMSChannel(tac, SMSChannelConfig(memory_mode="once"))], reply=agent
    )
    customer = app.sandbox.customer("sms")
    await customer.ask("one", timeout=5)
    await customer.ask("two", timeout=5)
    assert _kinds(await _memory_requests(app))["recall"] == 1
    client = app.tac.conversation_orchestrator_client
    assert client is not None
    assert customer.conversation_id is not None
    await client.update_conversation(customer.conversation_id, "INACTIVE")
    await app.sandbox.client.webhooks_idle(5)
    await customer.ask("three", timeout=5)
    assert _kinds(await _memory_requests(app))["recall"] == 2


async def test_trait_changed_mid_conversation_shows_next_turn(start_app) -> None:
    agent = Agent()
    app = await start_app(
        lambda tac: [SMSChannel(tac, SMSChannelConfig(memory_mode="always"))], reply=agent
    )
    customer = app.sandbox.customer("sms")
    await customer.ask("hello", timeout=5)
    session = agent.turns[0][1]
    assert session.profile is not None
    assert session.profile_id is not None
    assert "Preferences" not in session.profile.traits
    memory = app.tac.conversation_memory_client
    assert memory is not None
    await memory.patch_profile_traits(session.profile_id, {"Preferences": {"language": "es"}})
    await customer.ask("hola", timeout=5)
    later = agent.turns[1][1]
    assert later.profile is not None
    assert later.profile.traits["Preferences"]["language"] == "es"


async def test_memory_outage_falls_back_to_conversation_history(start_app) -> None:
    agent = Agent()
    app = await start_app(
        lambda tac: [SMSChannel(tac, SMSChannelConfig(memory_mode="always"))], reply=agent
    )
    customer = app.sandbox.customer("sms")
    await customer.ask("my order is late", timeout=5)
    await app.sandbox.client.set_fault("memory", outage=True)
    reply = await customer.ask("any news?", timeout=5)
    assert reply.text == "echo: any news?"
    memory = agent.turns[1][2]
    assert isinstance(memory, TACMemoryResponse)
    assert memory.observations == []
    texts = [c.content.text for c in memory.communications]
    assert "my order is late" in texts
    assert app.errors == []


async def test_unknown_customer_is_reconciled_with_a_profile(start_app) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent)
    customer = app.sandbox.customer("sms", participant_type="UNKNOWN")
    assert (await customer.ask("hi", timeout=5)).text == "echo: hi"
    client = app.tac.conversation_orchestrator_client
    assert client is not None
    assert customer.conversation_id is not None
    participants = await client.list_participants(customer.conversation_id)
    by_address = {p.addresses[0].address: p for p in participants}
    reconciled = by_address[customer.address]
    assert reconciled.type == "CUSTOMER"
    assert reconciled.profile_id is not None
    assert agent.turns[0][1].profile_id == reconciled.profile_id


async def test_unknown_whatsapp_customer_found_by_phone(start_app) -> None:
    app = await start_app(lambda tac: [WhatsAppChannel(tac)], reply=Agent())
    customer = app.sandbox.customer("whatsapp", participant_type="UNKNOWN")
    await customer.ask("hi", timeout=5)
    client = app.tac.conversation_orchestrator_client
    assert client is not None
    assert customer.conversation_id is not None
    participants = await client.list_participants(customer.conversation_id)
    reconciled = next(p for p in participants if p.addresses[0].address == customer.address)
    assert reconciled.type == "CUSTOMER"
    assert reconciled.profile_id is not None


async def test_unknown_chat_customer_is_left_alone(start_app) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [ChatChannel(tac)], reply=agent)
    customer = app.sandbox.customer("chat", participant_type="UNKNOWN")
    assert (await customer.ask("hi", timeout=5)).text == "echo: hi"
    assert agent.turns[0][1].profile_id is None


async def _conversation(app: Any, participants: list[dict[str, Any]]) -> str:
    from tac.models.conversation import ConversationRequest, ParticipantRequest

    client = app.tac.conversation_orchestrator_client
    request = ConversationRequest(
        configuration_id=app.tac.config.conversation_configuration_id,
        participants=[ParticipantRequest.model_validate(p) for p in participants],
    )
    return (await client.create_conversation(request)).id


async def _say(app: Any, conversation_id: str, author: str, text: str) -> None:
    from tac.models.conversation import (
        CommunicationContent,
        CommunicationParticipant,
        CommunicationRequest,
    )

    client = app.tac.conversation_orchestrator_client
    await client.create_communication(
        conversation_id,
        CommunicationRequest(
            author=CommunicationParticipant(address=author, channel="SMS"),
            content=CommunicationContent(text=text),
            recipients=[
                CommunicationParticipant(address=app.tac.config.phone_number, channel="SMS")
            ],
        ),
    )


async def test_missing_agent_participant_is_added(start_app) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent)
    customer = "+14155550123"
    conversation_id = await _conversation(
        app, [{"type": "CUSTOMER", "addresses": [{"channel": "SMS", "address": customer}]}]
    )
    await _say(app, conversation_id, customer, "is anyone there?")
    messages = await app.sandbox.client.messages(conversation_id, after=1, wait=5)
    assert [m["content"]["text"] for m in messages] == ["echo: is anyone there?"]
    participants = await app.tac.conversation_orchestrator_client.list_participants(conversation_id)
    kinds = {p.addresses[0].address: p.type for p in participants}
    assert kinds == {customer: "CUSTOMER", app.tac.config.phone_number: "AI_AGENT"}


async def test_message_from_a_human_agent_is_dropped_and_reported(start_app) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent)
    human = "+14155550999"
    conversation_id = await _conversation(
        app,
        [
            {"type": "CUSTOMER", "addresses": [{"channel": "SMS", "address": "+14155550124"}]},
            {"type": "HUMAN_AGENT", "addresses": [{"channel": "SMS", "address": human}]},
        ],
    )
    await _say(app, conversation_id, human, "I'll take it from here")
    await eventually(lambda: app.errors)
    assert agent.turns == []
    assert len(app.errors) == 1
    _, context = app.errors[0]
    assert context == {
        "conversation_id": conversation_id,
        "channel": "sms",
        "dropped_inbound": True,
    }
    assert await app.tac.session_store.session_count() == 0
