"""The MCP surface: TAC's tools served over MCP (streamable HTTP on loopback), and an MCP
server's tools used as TAC tools by a connector, against the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agents import Agent, OpenAIResponsesModel, RunConfig
from mcp import Client
from mcp.server.mcpserver import MCPServer
from openai import AsyncOpenAI

from tac.channels import SMSChannel
from tac.connectors import ConnectorRouter
from tac.connectors.mcp import create_mcp_server, mcp_tools
from tac.connectors.openai_agents import OpenAIAgentsConnector
from tac.sandbox import serve_app
from tac.testing import FakeModel
from tac.tools import function_tool
from tests._ports import free_port

pytestmark = pytest.mark.integration


@function_tool
def store_hours() -> str:
    """When the store is open."""
    return "9 to 5"


async def test_tac_tools_over_mcp(start_app, tmp_path: Path) -> None:
    app = await start_app(
        channels=lambda tac: [SMSChannel(tac)],
        setup=lambda tac: ConnectorRouter.of(tac).add_callback(lambda m, s, mem: "noted"),
    )
    (tmp_path / "returns.md").write_text("# Returns\n\nYou may return an item within 30 days.\n")
    await app.sandbox.client.request(
        "POST", "/sandbox/knowledge/load", json={"path": str(tmp_path)}
    )
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("I need help with a refund")).text == "noted"
    conversation_id = customer.conversation_id
    assert conversation_id is not None
    port = free_port()
    server = create_mcp_server(app.tac, [store_hours])
    async with (
        serve_app(server.streamable_http_app(), port=port),
        Client(f"http://127.0.0.1:{port}/mcp") as client,
    ):
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(listed) == {
            "search_knowledge",
            "retrieve_profile_memory",
            "handoff",
            "store_hours",
        }
        assert listed["handoff"].input_schema["required"] == ["conversation_id", "reason"]

        hours = await client.call_tool("store_hours", {})
        assert hours.structured_content == {"result": "9 to 5"}
        assert not hours.is_error

        found = await client.call_tool("search_knowledge", {"query": "how long for returns?"})
        assert "30 days" in found.content[0].text

        memory = await client.call_tool(
            "retrieve_profile_memory", {"conversation_id": conversation_id, "query": "refund"}
        )
        assert not memory.is_error
        assert "observations" in memory.structured_content

        unknown = await client.call_tool(
            "retrieve_profile_memory", {"conversation_id": "conv_nope", "query": "x"}
        )
        assert unknown.is_error
        assert "no live conversation" in unknown.content[0].text

        handoff = await client.call_tool(
            "handoff", {"conversation_id": conversation_id, "reason": "refund dispute"}
        )
        assert handoff.structured_content["status"] == "handoff_initiated"
    tasks = await app.sandbox.client.request(
        "GET", "/sandbox/flex/tasks", params={"conversationId": conversation_id}
    )
    assert tasks["tasks"][0]["attributes"] == {"reason": "refund dispute"}


async def test_an_mcp_servers_tools_as_tac_tools(start_app) -> None:
    weather = MCPServer("weather")

    @weather.tool()
    def forecast(city: str) -> str:
        """Tomorrow's weather in a city."""
        return f"Sunny in {city}"

    model = FakeModel()
    model.call_tool("forecast", {"city": "Lisbon"}).reply("Sunny in Lisbon tomorrow.")
    with model.serve():
        async with Client(weather) as client:
            tools = await mcp_tools(client)
            assert [tool.name for tool in tools] == ["forecast"]
            assert await tools[0](city="Porto") == "Sunny in Porto"
            assert "error" in await tools[0](town="Porto")  # validated like any TAC tool
            agent = Agent(
                name="a",
                model=OpenAIResponsesModel(
                    model="m", openai_client=AsyncOpenAI(base_url=model.base_url, api_key="k")
                ),
            )

            def setup(tac: Any) -> None:
                OpenAIAgentsConnector(
                    tac, agent, tools=tools, run_config=RunConfig(tracing_disabled=True)
                )

            app = await start_app(channels=lambda tac: [SMSChannel(tac)], setup=setup)
            reply = await app.sandbox.customer("sms").ask("Weather in Lisbon tomorrow?")
    assert reply.text == "Sunny in Lisbon tomorrow."
    assert "Sunny in Lisbon" in model.requests[1].tool_outputs[0]
    model.assert_complete()
