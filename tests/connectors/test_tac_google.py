"""tac_google: an ADK agent (its model a scripted ADK ``BaseLlm``) in process and behind the
Agent Engine query API, answering the sandbox's SMS and a ConversationRelay call."""

from __future__ import annotations

import pytest

pytest.importorskip("google.adk", reason="needs google-adk (opentac[google])")

from collections.abc import AsyncIterator
from typing import Any

from google.adk.agents import Agent
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.genai import types

from tac.tools import function_tool
from tac_google.connectors import (
    ADKAgentConnector,
    ADKAgentEngineConnector,
    create_handoff_tool,
    to_adk_tool,
)
from tests.connectors._adk_fakes import ScriptedLlm, texts
from tests.voice._harness import VoiceApp

pytestmark = pytest.mark.integration


@function_tool
def order_status(order_id: str) -> str:
    """Where an order is.

    Args:
        order_id: the order number.
    """
    return f"{order_id} ships Monday"


async def test_in_process_adk_agent_on_sms(start_app) -> None:
    llm = ScriptedLlm(script=[("order_status", {"order_id": "A17"}), "A17 ships Monday.", "Bye!"])
    agent = Agent(
        name="support", model=llm, instruction="Be brief.", tools=[to_adk_tool(order_status)]
    )
    connectors: list[ADKAgentConnector] = []

    def build(tac: Any) -> list[Any]:
        connectors.append(ADKAgentConnector(tac, agent, sms_config={"memory_mode": "always"}))
        return connectors[0].channels.messaging

    app = await start_app(channels=build, setup=lambda tac: None)
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("Where is A17?")).text == "A17 ships Monday."
    assert (await customer.ask("Thanks")).text == "Bye!"
    first = texts(llm.seen[0])[-1][1]
    assert first.startswith("<MEMORY>\n# Customer Context")
    assert first.endswith("<USER_MESSAGE>\nWhere is A17?\n</USER_MESSAGE>")
    after_tool = llm.seen[1].contents[-1].parts[0].function_response
    assert after_tool is not None
    assert after_tool.response == {"result": "A17 ships Monday"}
    # the session carries the first turn; unchanged memory is not sent again
    history = texts(llm.seen[2])
    assert ("model", "A17 ships Monday.") in history
    assert history[-1] == ("user", "<USER_MESSAGE>\nThanks\n</USER_MESSAGE>")
    cid = customer.conversation_id
    assert cid is not None
    await app.tac.end_session(cid)
    service = connectors[0].session_service
    assert await service.list_sessions(app_name="tac") is not None
    listed = await service.list_sessions(app_name="tac", user_id=None)
    assert listed.sessions == []  # deleted with the conversation


async def test_in_process_adk_agent_streams_to_a_call() -> None:
    llm = ScriptedLlm(script=["Your order ships on Monday at noon."])
    app = VoiceApp(
        channel_factory=lambda tac: ADKAgentConnector(tac, Agent(name="a", model=llm)).voice
    )
    async with app:
        async with app.call() as call:
            await call.say("When does it ship?")
            text, frames = await call.reply()
        await app.settled()
    assert text == "Your order ships on Monday at noon."
    assert len([f for f in frames if f["type"] == "text"]) > 3


class LocalAgentEngine:
    """The query API of an ADK agent deployed to Agent Engine, served by a real ADK runner
    in this process (events as dicts, as the remote API returns them)."""

    def __init__(self, agent: Agent) -> None:
        self.sessions = InMemorySessionService()
        self.runner = Runner(app_name="engine", agent=agent, session_service=self.sessions)
        self.deleted: list[str] = []

    async def async_create_session(self, *, user_id: str) -> dict[str, Any]:
        session = await self.sessions.create_session(app_name="engine", user_id=user_id)
        return {"id": session.id, "user_id": user_id}

    async def async_stream_query(
        self, *, message: str, user_id: str, session_id: str
    ) -> AsyncIterator[dict[str, Any]]:
        content = types.Content(role="user", parts=[types.Part(text=message)])
        async for event in self.runner.run_async(
            user_id=user_id, session_id=session_id, new_message=content
        ):
            yield event.model_dump(mode="json", exclude_none=True)

    async def async_delete_session(self, *, user_id: str, session_id: str) -> None:
        self.deleted.append(session_id)
        await self.sessions.delete_session(
            app_name="engine", user_id=user_id, session_id=session_id
        )


async def test_agent_engine_query_api(start_app) -> None:
    llm = ScriptedLlm(script=["Hello from Agent Engine."])
    engines: list[LocalAgentEngine] = []

    def build(tac: Any) -> list[Any]:
        engines.append(LocalAgentEngine(Agent(name="support", model=llm)))
        return ADKAgentEngineConnector(tac, engines[0]).channels.messaging

    app = await start_app(channels=build, setup=lambda tac: None)
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("hi")).text == "Hello from Agent Engine."
    assert texts(llm.seen[0])[-1] == ("user", "<USER_MESSAGE>\nhi\n</USER_MESSAGE>")
    assert customer.conversation_id is not None
    await app.tac.end_session(customer.conversation_id)
    assert len(engines[0].deleted) == 1  # the remote session goes with the conversation


async def test_in_process_handoff(start_app) -> None:
    llm = ScriptedLlm(script=[("handoff", {"reason": "asked for a person"}), "Connecting you."])

    def build(tac: Any) -> list[Any]:
        agent = Agent(name="support", model=llm, tools=[create_handoff_tool(tac)])
        return ADKAgentConnector(tac, agent).channels.messaging

    app = await start_app(channels=build, setup=lambda tac: None)
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("A person please")).text == "Connecting you."
    tasks = await app.sandbox.client.request(
        "GET", "/sandbox/flex/tasks", params={"conversationId": customer.conversation_id}
    )
    assert tasks["tasks"][0]["attributes"] == {"reason": "asked for a person"}
