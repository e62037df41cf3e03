"""LangGraphConnector end to end: the sandbox's SMS and a ConversationRelay call over real HTTP
and WebSockets; the model is LangChain's fake chat model."""

from __future__ import annotations

import pytest

pytest.importorskip("langgraph", reason="needs LangGraph (opentac[langgraph])")

import asyncio
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from tac.channels import ChatChannel, SMSChannel, SMSChannelConfig
from tac.connectors.langgraph import MEMORY_MESSAGE_ID, LangGraphConnector
from tac.connectors.openai_agents import OpenAIAgentsConnector
from tac.models.session import ConversationSession
from tac.tools import function_tool
from tests.connectors._langchain_fakes import ScriptedChat, react_graph, tool_call
from tests.voice._harness import VoiceApp

pytestmark = pytest.mark.integration


@function_tool
def order_status(order_id: str) -> str:
    """Where an order is.

    Args:
        order_id: the order number.
    """
    return f"{order_id} ships Monday"


async def test_sms_memory_tool_history_and_handoff(start_app) -> None:
    model = ScriptedChat(
        messages=iter(
            [
                tool_call("order_status", {"order_id": "A17"}),
                "A17 ships Monday.",
                "Glad to help.",
                tool_call("handoff", {"reason": "asked for a person"}, "call_2"),
                "A person will take it from here.",
            ]
        )
    )
    connectors: list[LangGraphConnector] = []
    app = await start_app(
        channels=lambda tac: [SMSChannel(tac, SMSChannelConfig(memory_mode="always"))],
        setup=lambda tac: connectors.append(
            LangGraphConnector(
                tac, lambda session, tools: react_graph(model, tools), tools=[order_status]
            )
        ),
    )
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("Where is A17?")).text == "A17 ships Monday."
    assert (await customer.ask("Thanks!")).text == "Glad to help."
    first, after_tool, second = model.seen[:3]
    memory = [m for m in first if isinstance(m, SystemMessage)]
    assert len(memory) == 1
    assert memory[0].id == MEMORY_MESSAGE_ID
    assert "# Customer Context" in str(memory[0].content)
    assert "A17 ships Monday" in str(after_tool[-1].content)  # the TAC tool ran
    # the thread carries the first turn, with the memory message refreshed in place
    assert [type(m).__name__ for m in second] == [
        "SystemMessage",
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
        "HumanMessage",
    ]
    assert (await customer.ask("I want a person")).text == "A person will take it from here."
    tasks = await app.sandbox.client.request(
        "GET", "/sandbox/flex/tasks", params={"conversationId": customer.conversation_id}
    )
    assert tasks["tasks"][0]["attributes"] == {"reason": "asked for a person"}
    # the handoff ended the session: its thread is gone
    config = connectors[0].run_config(customer.conversation_id)
    assert (await connectors[0].checkpointer.aget_tuple(config)) is None
    assert app.errors == []


async def test_two_connectors_share_one_tac(start_app) -> None:
    """LangGraph answers SMS while the OpenAI Agents SDK answers chat, on one TAC."""
    from agents import Agent, OpenAIResponsesModel, RunConfig
    from openai import AsyncOpenAI

    from tac.testing import FakeModel

    chat_model = ScriptedChat(messages=iter(["from langgraph"]))
    fake = FakeModel()
    fake.reply("from openai agents")
    with fake.serve():
        agent = Agent(
            name="a",
            model=OpenAIResponsesModel(
                model="m", openai_client=AsyncOpenAI(base_url=fake.base_url, api_key="k")
            ),
        )

        def setup(tac: Any) -> None:
            LangGraphConnector(
                tac, lambda s, tools: react_graph(chat_model, tools), channels=["sms"]
            )
            OpenAIAgentsConnector(
                tac, agent, channels=["chat"], run_config=RunConfig(tracing_disabled=True)
            )

        app = await start_app(channels=lambda tac: [SMSChannel(tac), ChatChannel(tac)], setup=setup)
        assert (await app.sandbox.customer("sms").ask("hi")).text == "from langgraph"
        assert (await app.sandbox.customer("chat").ask("hi")).text == "from openai agents"
    fake.assert_complete()


async def test_voice_streams_and_trims_the_thread_on_interrupt() -> None:
    model = ScriptedChat(
        messages=iter(
            ["Your order ships Monday at noon, and the courier calls first.", "On Monday."]
        )
    )
    app = VoiceApp()
    connector = LangGraphConnector(
        app.tac, lambda session, tools: react_graph(model, tools), tools=[order_status]
    )
    async with app:
        async with app.call() as call:
            await call.say("When does it ship?")
            text, frames = await call.reply()
            assert text == "Your order ships Monday at noon, and the courier calls first."
            assert len([f for f in frames if f["type"] == "text"]) > 3
            await call.interrupt("Your order ships Monday")
            config = connector.run_config(call.call_sid)
            session = ConversationSession(conversation_id=call.call_sid, channel="voice")

            async def trimmed() -> bool:
                graph = await connector.graph_for(session)
                messages = (await graph.aget_state(config)).values["messages"]
                return messages[-1].content == "Your order ships Monday"

            for _ in range(500):
                if await trimmed():
                    break
                await asyncio.sleep(0.01)
            assert await trimmed()
            await call.say("Sorry, when?")
            assert (await call.reply())[0] == "On Monday."
        await app.settled()
    second = model.seen[1]
    assert [(type(m).__name__, m.content) for m in second[-3:]] == [
        ("HumanMessage", "When does it ship?"),
        ("AIMessage", "Your order ships Monday"),
        ("HumanMessage", "Sorry, when?"),
    ]
    assert isinstance(second[-2], AIMessage)
    assert isinstance(second[-1], HumanMessage)


async def test_voice_interrupt_during_a_tool_answers_the_call() -> None:
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

    model = ScriptedChat(messages=iter([tool_call("slow_lookup", {"item": "kettle"}), "Aisle 4."]))
    app = VoiceApp()
    connector = LangGraphConnector(
        app.tac, lambda session, tools: react_graph(model, tools), tools=[slow_lookup]
    )
    async with app:
        async with app.call() as call:
            await call.say("Is the kettle in stock?")
            await asyncio.wait_for(started.wait(), 5)
            await call.interrupt("")
            await app.until(lambda: call.call_sid not in connector._turns)
            await call.say("Where are kettles?")
            assert (await call.reply())[0] == "Aisle 4."
        await app.settled()
    second = model.seen[-1]
    assert [type(m).__name__ for m in second] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "HumanMessage",
    ]
    assert "Cancelled" in str(second[2].content)
