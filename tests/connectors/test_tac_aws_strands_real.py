"""StrandsConnector with a real ``strands.Agent`` (its model scripted through Strands' own
``Model`` interface). ``strands-agents`` is in opentac's dev environment (``dev`` includes the
``strands`` extra; it pins ``mcp<2.2``, so MCP resolves to 2.1.1 there)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from strands import Agent, tool
from strands.models import Model

from tac.models.session import ConversationSession
from tac_aws.connectors import StrandsConnector
from tac_aws.tools.strands import create_memory_tool
from tests.voice._harness import VoiceApp

pytestmark = pytest.mark.integration


class ScriptedModel(Model):
    """A Strands model whose answers are scripted: text, or a tool call."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Any]] = []
        self.calls: list[tuple[str | None, list[dict[str, Any]]]] = []

    def reply(self, text: str) -> ScriptedModel:
        self.steps.append(("text", text))
        return self

    def call_tool(self, name: str, args: Any) -> ScriptedModel:
        self.steps.append(("tool", (name, args)))
        return self

    def update_config(self, **model_config: Any) -> None:
        return None

    def get_config(self) -> Any:
        return {}

    def structured_output(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def stream(  # type: ignore[override]
        self, messages: Any, tool_specs: Any = None, system_prompt: str | None = None, **_: Any
    ) -> AsyncIterator[dict[str, Any]]:
        self.calls.append((system_prompt, json.loads(json.dumps(messages, default=str))))
        kind, value = self.steps.pop(0)
        yield {"messageStart": {"role": "assistant"}}
        if kind == "tool":
            name, args = value
            arguments = args() if callable(args) else args
            use = {"toolUse": {"toolUseId": f"t{len(self.calls)}", "name": name}}
            yield {"contentBlockStart": {"start": use}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(arguments)}}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
            return
        yield {"contentBlockStart": {"start": {}}}
        for index, word in enumerate(value.split(" ")):
            yield {"contentBlockDelta": {"delta": {"text": word if index == 0 else " " + word}}}
        yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": "end_turn"}}


def texts(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], b["text"]) for m in messages for b in m["content"] if "text" in b]


@tool
def order_status(order_id: str) -> str:
    """Where an order is.

    Args:
        order_id: the order number.
    """
    return f"{order_id} ships Monday"


async def test_sms_with_a_real_strands_agent(start_app) -> None:
    model = ScriptedModel()
    profile: dict[str, str] = {}
    model.call_tool("order_status", {"order_id": "A17"}).reply("A17 ships Monday.")
    model.call_tool("retrieve_twilio_memory", lambda: {"profile_id": profile["id"]})
    model.reply("You prefer email.")
    connectors: list[StrandsConnector] = []

    def build(tac: Any) -> list[Any]:
        memory_tool = create_memory_tool(tac.conversation_memory_client)

        def create_agent(session: ConversationSession) -> Agent:
            tools = [order_status, memory_tool]
            return Agent(model=model, tools=tools, system_prompt="Be brief.", callback_handler=None)

        connectors.append(StrandsConnector(tac, create_agent, sms_config={"memory_mode": "always"}))
        return connectors[0].channels.messaging

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

    (first_prompt, _), (_, after_tool), (second_prompt, second), (_, after_memory) = model.calls
    assert first_prompt is not None
    assert first_prompt.startswith("Be brief.\n\n# Customer Context")
    assert second_prompt is not None
    assert "Prefers email" in second_prompt
    (result,) = after_tool[-1]["content"]
    assert "A17 ships Monday" in json.dumps(result["toolResult"])
    assert "Prefers email" in json.dumps(after_memory[-1]["content"])
    assert ("assistant", "A17 ships Monday.") in texts(second)
    assert texts(second)[-1] == ("user", "Can you email me instead?")
    orchestrator = app.tac.conversation_orchestrator_client
    assert orchestrator is not None
    await orchestrator.update_conversation(cid, "CLOSED")
    for _ in range(500):
        if cid not in connectors[0].agents:
            break
        await asyncio.sleep(0.01)
    assert cid not in connectors[0].agents
    assert app.errors == []


async def test_voice_interrupt_trims_a_real_agents_messages() -> None:
    model = ScriptedModel()
    model.reply("Your order ships Monday at noon, and the courier calls first.")
    model.reply("Monday.")
    connectors: list[StrandsConnector] = []

    def make(tac: Any) -> Any:
        connectors.append(
            StrandsConnector(tac, lambda s: Agent(model=model, callback_handler=None))
        )
        return connectors[0].voice

    app = VoiceApp(channel_factory=make)
    async with app:
        async with app.call() as call:
            await call.say("When does it ship?")
            text, frames = await call.reply()
            assert text == "Your order ships Monday at noon, and the courier calls first."
            assert len([f for f in frames if f["type"] == "text"]) > 3
            await call.interrupt("Your order ships Monday")
            await app.until(
                lambda: (
                    texts(connectors[0].agents[call.call_sid].messages)[-1]
                    == ("assistant", "Your order ships Monday")
                )
            )
            await call.say("Sorry, when?")
            assert (await call.reply())[0] == "Monday."
        await app.settled()
    assert ("assistant", "Your order ships Monday") in texts(model.calls[1][1])
    assert connectors[0].agents == {}


async def test_voice_interrupt_during_a_tool_with_history_in_a_store() -> None:
    """A real agent cut short mid-tool: the next model call gets a valid conversation (no
    unanswered toolUse, alternating roles), loaded from the ConversationHistory."""
    from tac.connectors import InMemoryConversationHistory

    started = asyncio.Event()

    @tool
    async def slow_lookup(item: str) -> str:
        """Look an item up (slowly).

        Args:
            item: the item.
        """
        started.set()
        await asyncio.Event().wait()
        return "never"

    model = ScriptedModel()
    model.call_tool("slow_lookup", {"item": "kettle"})
    model.reply("Kettles are in aisle 4.")
    history = InMemoryConversationHistory()
    connectors: list[StrandsConnector] = []

    def make(tac: Any) -> Any:
        def agent(session: ConversationSession) -> Agent:
            return Agent(model=model, tools=[slow_lookup], callback_handler=None)

        connectors.append(StrandsConnector(tac, agent, history=history))
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
    _, last = model.calls[-1]
    assert not any("toolUse" in block for m in last for block in m["content"])
    roles = [m["role"] for m in last]
    assert all(a != b for a, b in itertools.pairwise(roles))  # alternating
    assert texts(last)[-1] == ("user", "Where are kettles?")
    assert ("user", "Is the kettle in stock?") in texts(last)
    assert await history.get(call.call_sid) == []
