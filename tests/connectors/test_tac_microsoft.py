"""tac_microsoft: a Microsoft Agent Framework agent (its OpenAI chat client talking to
tac.testing.FakeModel) answering the sandbox's SMS and a ConversationRelay call."""

from __future__ import annotations

import pytest

pytest.importorskip("agent_framework.openai", reason="needs agent-framework-openai (dev extra)")

from pathlib import Path
from typing import Any

from agent_framework import Agent
from agent_framework.openai import OpenAIChatCompletionClient

from tac.models.session import ConversationSession
from tac.testing import FakeModel
from tac.tools import function_tool
from tac_microsoft import (
    AgentFrameworkConnector,
    FileAgentSessionStore,
    InMemoryAgentSessionStore,
    format_memory_context,
)
from tac_microsoft.agent_framework_tools import create_handoff_tool, to_agent_framework_tool
from tests.voice._harness import VoiceApp

pytestmark = pytest.mark.integration


@function_tool
def order_status(order_id: str) -> str:
    """Where an order is.

    Args:
        order_id: the order number.
    """
    return f"{order_id} ships Monday"


def client_for(model: FakeModel) -> OpenAIChatCompletionClient:
    return OpenAIChatCompletionClient(model="fake-model", api_key="k", base_url=model.base_url)


async def test_sms_memory_tool_and_handoff(start_app, tmp_path: Path) -> None:
    model = FakeModel()
    model.call_tool("order_status", {"order_id": "A17"}).reply("A17 ships Monday.")
    model.reply("Noted.")
    model.call_tool("handoff", {"reason": "wants a person"}).reply("Connecting you.")
    store = FileAgentSessionStore(tmp_path)
    connectors: list[AgentFrameworkConnector] = []
    with model.serve():

        def build(tac: Any) -> list[Any]:
            def create_agent(session: ConversationSession) -> Agent:
                tools = [to_agent_framework_tool(order_status), create_handoff_tool(tac, session)]
                return Agent(client_for(model), "Be brief.", tools=tools)

            connector = AgentFrameworkConnector(
                tac, create_agent, sms_config={"memory_mode": "always"}, session_store=store
            )
            connectors.append(connector)
            return connector.messaging_channels

        app = await start_app(channels=build, setup=lambda tac: None)
        customer = app.sandbox.customer("sms")
        assert (await customer.ask("Where is A17?")).text == "A17 ships Monday."
        cid = customer.conversation_id
        assert cid is not None
        assert store.path(cid).exists()  # the Agent Framework session was saved
        session = await app.tac.get_session(cid)
        assert session is not None
        assert session.profile_id is not None
        memory = app.tac.conversation_memory_client
        assert memory is not None
        await memory.create_observation(session.profile_id, "Prefers email")
        assert (await customer.ask("Email me")).text == "Noted."
        assert (await customer.ask("A person please")).text == "Connecting you."
    requests = model.requests
    assert "A17 ships Monday" in requests[1].tool_outputs[0]
    second_turn = requests[2]
    assert second_turn.user_text.startswith("[User Observations]\n- Prefers email")
    assert ("assistant", "A17 ships Monday.") in second_turn.messages  # the session's history
    assert '"handoff_initiated"' in requests[4].tool_outputs[-1]
    assert not store.path(cid).exists()  # deleted with the session (the handoff ended it)
    model.assert_complete()


async def test_voice_streams_and_trims_the_session_on_interrupt() -> None:
    model = FakeModel()
    model.reply("Your order ships Monday at noon, and the courier calls first.")
    model.reply("Monday.")
    store = InMemoryAgentSessionStore()
    with model.serve():
        app = VoiceApp(
            channel_factory=lambda tac: (
                AgentFrameworkConnector(
                    tac, lambda s: Agent(client_for(model), "Be brief."), session_store=store
                ).voice_channel
            )
        )
        async with app:
            async with app.call() as call:
                await call.say("When does it ship?")
                text, frames = await call.reply()
                assert text == "Your order ships Monday at noon, and the courier calls first."
                assert len([f for f in frames if f["type"] == "text"]) > 3
                await call.interrupt("Your order ships Monday")
                await app.until(lambda: len(store) == 1)
                await call.say("Sorry, when?")
                assert (await call.reply())[0] == "Monday."
            await app.settled()
    second = model.requests[1]
    assert ("assistant", "Your order ships Monday") in second.messages
    assert not any("courier" in text for _, text in second.messages)
    assert len(store) == 0  # deleted with the call


@pytest.mark.unit
async def test_file_store_names_cannot_escape(tmp_path: Path) -> None:
    store = FileAgentSessionStore(tmp_path / "sessions")
    path = store.path("../../etc/passwd")
    assert path.parent == tmp_path / "sessions"
    assert await store.load("missing") is None
    from agent_framework import AgentSession

    await store.save("conv_1", AgentSession(session_id="conv_1"))
    loaded = await store.load("conv_1")
    assert loaded is not None
    assert loaded.session_id == "conv_1"
    await store.delete("conv_1")
    assert await store.load("conv_1") is None
    assert format_memory_context(None, "hi") == "hi"


@pytest.mark.unit
async def test_voice_live_memory_tool_needs_conversation_memory() -> None:
    from tac import TAC, TACConfig
    from tac_microsoft.voice_live_tools import create_memory_tool

    tac = TAC(
        TACConfig(
            account_sid="AC" + "0" * 32,
            auth_token="token",
            api_key="SK" + "0" * 32,
            api_secret="secret",
            phone_number="+18005550100",
        )
    )
    session = ConversationSession(conversation_id="conv_1", channel="voice")
    assert create_memory_tool(tac, session) is None  # ConversationRelay-only: no memory store
    await tac.aclose()
