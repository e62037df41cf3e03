"""tac_aws's StrandsConnector and Strands memory tool, answering the sandbox's SMS and a
ConversationRelay call over real HTTP and WebSockets.

``strands-agents`` pins ``mcp<2.2`` and cannot be installed next to ``opentac[mcp]``, so the
agent here is :class:`FakeStrandsAgent`, which follows ``strands.Agent``'s documented
interface; ``test_real_strands_agent`` runs a real one where ``strands`` is installed.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tac.connectors import InMemoryConversationHistory
from tac.models.session import ConversationSession
from tac_aws.connectors import StrandsConnector
from tac_aws.tools.strands import create_memory_tool
from tests.connectors._strands_fakes import FakeStrandsAgent, Script, fake_strands_module
from tests.voice._harness import VoiceApp

pytestmark = pytest.mark.integration


@pytest.fixture
def strands_tool() -> Iterator[None]:
    """``strands.tool`` when Strands is installed; else :func:`fake_strands_module`'s."""
    try:
        import strands  # noqa: F401
    except ImportError:
        sys.modules["strands"] = fake_strands_module()
        try:
            yield
        finally:
            del sys.modules["strands"]
        return
    yield


async def _until(condition: Any, what: str) -> None:
    for _ in range(500):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_sms_memory_tools_and_history_end_with_the_session(start_app, strands_tool) -> None:
    looked_up: list[str] = []

    def order_status(order_id: str) -> str:
        looked_up.append(order_id)
        return f"{order_id} ships Monday"

    profile: dict[str, str] = {}
    script = Script()
    script.call_tool("order_status", {"order_id": "A17"}).reply("A17 ships Monday.")
    script.call_tool(
        "retrieve_twilio_memory", lambda: {"profile_id": profile["id"], "query": "email"}
    ).reply("You prefer email.")
    connectors: list[StrandsConnector] = []
    agents: list[FakeStrandsAgent] = []

    def build(tac: Any) -> list[Any]:
        memory_tool = create_memory_tool(tac.conversation_memory_client)

        def create_agent(session: ConversationSession) -> FakeStrandsAgent:
            agents.append(FakeStrandsAgent(script, [order_status, memory_tool], "Be brief."))
            return agents[-1]

        connector = StrandsConnector(tac, create_agent, sms_config={"memory_mode": "always"})
        connectors.append(connector)
        return connector.channels.messaging

    app = await start_app(channels=build, setup=lambda tac: None)
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("Where is A17?")).text == "A17 ships Monday."
    cid = customer.conversation_id
    assert cid is not None
    session = await app.tac.get_session(cid)
    assert session is not None
    assert session.profile_id is not None
    profile["id"] = session.profile_id
    memory = app.tac.conversation_memory_client
    assert memory is not None
    await memory.create_observation(session.profile_id, "Prefers email")
    assert (await customer.ask("Can you email me instead?")).text == "You prefer email."

    first, _, second, after_memory = script.calls
    assert first.system_prompt is not None
    assert first.system_prompt.startswith("Be brief.\n\n# Customer Context")  # memory injected
    assert second.system_prompt is not None
    assert "Prefers email" in second.system_prompt  # this turn's memory, replacing the last
    assert second.system_prompt.count("# Customer Context") == 1
    assert looked_up == ["A17"]
    (result,) = after_memory.messages[-1]["content"]
    recalled = result["toolResult"]["content"][0]["json"]
    assert [o["content"] for o in recalled["observations"]] == ["Prefers email"]
    # the second turn sees the first, tool call included
    texts = second.texts()
    assert ("user", "Where is A17?") in texts
    assert ("assistant", "A17 ships Monday.") in texts
    assert texts[-1] == ("user", "Can you email me instead?")
    assert len(agents) == 1  # one agent per conversation
    assert "tac-aws/" in app.tac.http.user_agent_suffix
    assert "StrandsConnector" in app.tac.http.user_agent_suffix

    orchestrator = app.tac.conversation_orchestrator_client
    assert orchestrator is not None
    await orchestrator.update_conversation(cid, "CLOSED")

    async def forgotten() -> bool:
        return cid not in connectors[0].agents

    await _until(forgotten, "the agent dropped when the conversation closed")
    assert agents[0].cleaned
    assert app.errors == []


async def test_voice_streams_and_trims_the_history_on_interrupt() -> None:
    script = Script()
    script.reply("Your order ships Monday at noon, and the courier calls first.")
    script.reply("Monday.")
    history = InMemoryConversationHistory()
    connectors: list[StrandsConnector] = []

    def make(tac: Any) -> Any:
        connectors.append(
            StrandsConnector(
                tac, lambda s: FakeStrandsAgent(script, [], "Be brief."), history=history
            )
        )
        return connectors[0].voice

    app = VoiceApp(channel_factory=make)
    async with app:
        async with app.call() as call:
            await call.say("When does it ship?")
            text, frames = await call.reply()
            assert text == "Your order ships Monday at noon, and the courier calls first."
            assert len([f for f in frames if f["type"] == "text"]) > 3  # streamed
            await call.interrupt("Your order ships Monday")

            async def trimmed() -> bool:
                items = await history.get(call.call_sid)
                return bool(items) and items[-1]["content"] == [{"text": "Your order ships Monday"}]

            await _until(trimmed, "the reply cut to what the caller heard")
            await call.say("Sorry, when?")
            assert (await call.reply())[0] == "Monday."
        await app.settled()
    texts = script.calls[1].texts()
    assert ("assistant", "Your order ships Monday") in texts
    assert not any("courier" in text for _, text in texts)
    assert await history.get(call.call_sid) == []  # ended with the call
    assert connectors[0].agents == {}


async def test_voice_interrupt_during_a_tool_leaves_no_dangling_call() -> None:
    started = asyncio.Event()

    async def slow_lookup(item: str) -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    script = Script()
    script.call_tool("slow_lookup", {"item": "kettle"})
    script.reply("Kettles are in aisle 4.")
    connectors: list[StrandsConnector] = []

    def make(tac: Any) -> Any:
        connectors.append(
            StrandsConnector(
                tac, lambda s: FakeStrandsAgent(script, [slow_lookup]), filler="One moment."
            )
        )
        return connectors[0].voice

    app = VoiceApp(channel_factory=make)
    async with app:
        async with app.call() as call:
            await call.say("Is the kettle in stock?")
            await asyncio.wait_for(started.wait(), 5)
            await call.interrupt("")
            await app.until(lambda: call.call_sid not in connectors[0]._turns)
            await call.say("Where are kettles?")
            assert (await call.reply())[0] == "Kettles are in aisle 4."
        await app.settled()
    last = script.calls[-1].messages
    assert not any("toolUse" in block for m in last for block in m["content"])
    # the unanswered question went into the next prompt: roles still alternate
    assert [m["role"] for m in last] == ["user"]
    assert [b["text"] for b in last[0]["content"]] == [
        "Is the kettle in stock?",
        "Where are kettles?",
    ]


async def test_turns_of_one_conversation_run_one_at_a_time() -> None:
    script = Script().reply("First answer.").reply("Second answer.")
    script.gate = asyncio.Event()
    app = VoiceApp()
    connector = StrandsConnector(app.tac, lambda s: FakeStrandsAgent(script))
    session = ConversationSession(conversation_id="conv_1", channel="sms")
    first = asyncio.ensure_future(connector.handle_message("one", session, None))
    second = asyncio.ensure_future(connector.handle_message("two", session, None))
    await asyncio.sleep(0.05)
    script.gate.set()
    assert await first == "First answer."
    assert await second == "Second answer."  # the agent would refuse a concurrent run
    assert [m["role"] for m in connector.agents["conv_1"].messages] == ["user", "assistant"] * 2


@pytest.mark.unit
async def test_at_most_max_conversations_agents_least_recent_dropped() -> None:
    script = Script().reply("one").reply("two").reply("three")
    app = VoiceApp()
    built: list[FakeStrandsAgent] = []

    async def create_agent(session: ConversationSession) -> FakeStrandsAgent:
        built.append(FakeStrandsAgent(script))
        return built[-1]

    connector = StrandsConnector(app.tac, create_agent, max_conversations=2)
    for cid in ("conv_1", "conv_2", "conv_3"):
        session = ConversationSession(conversation_id=cid, channel="sms")
        await connector.handle_message("hi", session, None)
    assert list(connector.agents) == ["conv_2", "conv_3"]
    assert built[0].cleaned
    assert not built[1].cleaned
    with pytest.raises(ValueError, match="max_conversations"):
        StrandsConnector(app.tac, create_agent, max_conversations=0)
