"""OpenAIAgentsConnector end to end: the sandbox's SMS and a ConversationRelay call over real
HTTP and WebSockets, the agent's model played by tac.testing.FakeModel (Responses API)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from agents import Agent, OpenAIResponsesModel, RunConfig
from openai import AsyncOpenAI

from tac.channels import SMSChannel, SMSChannelConfig
from tac.connectors.openai_agents import OpenAIAgentsConnector
from tac.testing import FakeModel
from tac.tools import function_tool
from tests.voice._harness import VoiceApp

pytestmark = pytest.mark.integration

NO_TRACING = RunConfig(tracing_disabled=True)


@pytest_asyncio.fixture
async def model() -> AsyncIterator[FakeModel]:
    fake = FakeModel()
    async with fake.serve():
        yield fake
    fake.assert_complete()


def agent_on(model: FakeModel, **options: Any) -> Agent[Any]:
    client = AsyncOpenAI(base_url=model.base_url, api_key="sk-test")
    return Agent(
        name="support",
        instructions="You are a support agent.",
        model=OpenAIResponsesModel(model="fake-model", openai_client=client),
        **options,
    )


async def test_sms_turns_with_memory_tools_and_history(start_app, model: FakeModel) -> None:
    looked_up: list[str] = []

    @function_tool
    def order_status(order_id: str) -> str:
        """Where an order is.

        Args:
            order_id: the order number.
        """
        looked_up.append(order_id)
        return "ships Monday"

    model.call_tool("order_status", {"order_id": "A17"}).reply("Order A17 ships Monday.")
    model.reply("You're welcome!")
    app = await start_app(
        channels=lambda tac: [SMSChannel(tac, SMSChannelConfig(memory_mode="always"))],
        setup=lambda tac: OpenAIAgentsConnector(
            tac, agent_on(model), tools=[order_status], run_config=NO_TRACING
        ),
    )
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("Where is order A17?")).text == "Order A17 ships Monday."
    assert (await customer.ask("Thanks")).text == "You're welcome!"
    assert looked_up == ["A17"]
    first, after_tool, second = model.requests
    assert "You are a support agent." in first.instructions
    assert "# Customer Context" in first.instructions  # memory injected
    assert {"order_status", "handoff"} <= set(first.tools)
    assert after_tool.tool_outputs == ('"ships Monday"',)
    # the second turn sees the first one, tool call included
    assert ("user", "Where is order A17?") in second.messages
    assert ("assistant", "Order A17 ships Monday.") in second.messages
    assert second.messages[-1] == ("user", "Thanks")
    assert app.errors == []


async def test_sms_handoff_tool_reaches_studio(start_app, model: FakeModel) -> None:
    model.call_tool("handoff", {"reason": "wants a human"}).reply("Connecting you to a person.")
    ended: list[str] = []

    def setup(tac: Any) -> None:
        OpenAIAgentsConnector(tac, agent_on(model), run_config=NO_TRACING)
        tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))

    app = await start_app(channels=lambda tac: [SMSChannel(tac)], setup=setup)
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("Get me a human")).text == "Connecting you to a person."
    assert '"status": "handoff_initiated"' in model.requests[1].tool_outputs[0]
    tasks = await app.sandbox.client.request(
        "GET", "/sandbox/flex/tasks", params={"conversationId": customer.conversation_id}
    )
    (task,) = tasks["tasks"]  # Studio started the handoff flow: a Flex task waits
    assert task["attributes"] == {"reason": "wants a human"}
    assert ended == [customer.conversation_id]


async def test_voice_streams_tokens_and_trims_history_on_interrupt(model: FakeModel) -> None:
    model.reply("Your order ships Monday at noon, and the courier will call first.")
    model.reply("Monday.")
    app = VoiceApp()
    connector = OpenAIAgentsConnector(app.tac, agent_on(model), run_config=NO_TRACING)
    async with app:
        async with app.call() as call:
            await call.say("When does my order ship?")
            text, frames = await call.reply()
            assert text == "Your order ships Monday at noon, and the courier will call first."
            assert len([f for f in frames if f["type"] == "text"]) > 3  # streamed
            await call.interrupt("Your order ships Monday")
            await app.until(lambda: len(model.requests) == 1)
            conversation_id = call.call_sid
            await _until_history(connector, conversation_id, "Your order ships Monday")
            await call.say("Sorry, when?")
            assert (await call.reply())[0] == "Monday."
        await app.settled()
    second = model.requests[1]
    assert ("assistant", "Your order ships Monday") in second.messages
    assert not any("courier" in text for _, text in second.messages)
    assert await connector.history.get(conversation_id) == []  # ended with the call


async def test_voice_says_a_filler_while_a_tool_is_slow(model: FakeModel) -> None:
    release = asyncio.Event()

    @function_tool
    async def check_inventory(item: str) -> str:
        """Whether an item is in stock.

        Args:
            item: the item.
        """
        await release.wait()
        return "in stock"

    model.call_tool("check_inventory", {"item": "kettle"}).reply("The kettle is in stock.")
    app = VoiceApp()
    OpenAIAgentsConnector(
        app.tac,
        agent_on(model),
        tools=[check_inventory],
        run_config=NO_TRACING,
        filler="One moment please.",
        filler_after_seconds=0.05,
    )
    async with app:
        async with app.call() as call:
            await call.say("Do you have the kettle?")
            first = await call.frame()
            assert first["type"] == "text"
            assert first["token"] == "One moment please."
            release.set()
            text, _ = await call.reply()
            assert text == "The kettle is in stock."
        await app.settled()


async def _until_history(connector: OpenAIAgentsConnector, cid: str, reply: str) -> None:
    for _ in range(500):
        items = await connector.history.get(cid)
        texts = [_text(item) for item in items if item.get("role") == "assistant"]
        if texts and texts[-1] == reply:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"history never trimmed: {items}")


def _text(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


async def test_voice_interrupt_during_a_tool_leaves_no_dangling_call(model: FakeModel) -> None:
    started = asyncio.Event()

    @function_tool
    async def slow_lookup(item: str) -> str:
        """Look an item up (slowly).

        Args:
            item: the item.
        """
        started.set()
        await asyncio.Event().wait()
        return "never"

    model.call_tool("slow_lookup", {"item": "kettle"})
    model.reply("Kettles are in aisle 4.")
    app = VoiceApp()
    connector = OpenAIAgentsConnector(
        app.tac, agent_on(model), tools=[slow_lookup], run_config=NO_TRACING
    )
    async with app:
        async with app.call() as call:
            await call.say("Is the kettle in stock?")
            await asyncio.wait_for(started.wait(), 5)
            await call.interrupt("")
            await app.until(lambda: call.call_sid not in connector._turns)
            await call.say("Where are kettles?")
            assert (await call.reply())[0] == "Kettles are in aisle 4."
        await app.settled()
    second = model.requests[-1]
    kinds = [item.get("type", "message") for item in second.body["input"]]
    assert "function_call" not in kinds  # the cut-short call was not kept unanswered
    users = [text for role, text in second.messages if role == "user"]
    assert users == ["Is the kettle in stock?", "Where are kettles?"]
