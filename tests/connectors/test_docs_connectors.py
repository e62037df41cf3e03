"""Every python snippet of docs/connectors/ runs: the examples serve real apps against the
sandbox, with the model scripted (FakeModel for OpenAI, LangChain's fake chat model)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import agents
import pytest
from twilio.request_validator import RequestValidator

from tac.sandbox import Sandbox, serve_app
from tac.testing import FakeModel
from tests._ports import free_port

DOCS = Path(__file__).resolve().parents[2] / "docs" / "connectors"
CONVERSATION = "conv_conversation_01kbxyz0123456789abcdefgh"  # AgentCore wants 33+ characters
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippets(page: str) -> list[str]:
    found = FENCE.findall((DOCS / page).read_text(encoding="utf-8"))
    assert found, f"{page} has no python snippets"
    return found


def run(page: str, names: dict[str, Any]) -> dict[str, Any]:
    names.setdefault("__name__", f"docs:{page}")
    for number, block in enumerate(snippets(page), 1):
        exec(compile(block, f"docs/connectors/{page}#{number}", "exec"), names)
    return names


@pytest.fixture
def no_tracing() -> Iterator[None]:
    agents.set_tracing_disabled(True)
    yield
    agents.set_tracing_disabled(False)


@pytest.mark.unit
def test_index_page() -> None:
    run("index.md", {})


@pytest.mark.unit
def test_migration_page() -> None:
    """Every partner import the page calls "same" works unchanged."""
    for module in ("boto3", "agent_framework", "google.adk"):
        pytest.importorskip(module, reason=f"needs {module} (opentac[aws,microsoft,google])")
    run("migration.md", {})


@pytest.mark.integration
async def test_openai_agents_page(monkeypatch: pytest.MonkeyPatch, no_tracing: None) -> None:
    model = FakeModel()
    model.call_tool("order_status", {"order_id": "A17"}).reply("A17 ships on Monday.")
    port = free_port()
    with model.serve():
        async with Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox:
            for key, value in {**sandbox.env, **model.env()}.items():
                monkeypatch.setenv(key, value)
            names = run("openai-agents.md", {})
            async with serve_app(names["app"], port=port):
                reply = await sandbox.customer("sms").ask("Where is my order A17?")
            await names["tac"].aclose()
    assert reply.text == "A17 ships on Monday."
    assert "Order A17 ships on Monday." in model.requests[1].tool_outputs[0]
    assert "# Customer Context" in model.requests[0].instructions
    model.assert_complete()


@pytest.mark.integration
async def test_langgraph_page(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("langgraph", reason="needs LangGraph (opentac[langgraph])")
    from tests.connectors._langchain_fakes import ScriptedChat, tool_call

    model = ScriptedChat(
        messages=iter([tool_call("opening_hours", {"day": "Sunday"}), "We're closed on Sunday."])
    )
    port = free_port()
    async with Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox:
        for key, value in sandbox.env.items():
            monkeypatch.setenv(key, value)
        names = run("langgraph.md", {"model": model})
        async with serve_app(names["app"], port=port):
            reply = await sandbox.customer("sms").ask("Are you open on Sunday?")
        await names["tac"].aclose()
    assert reply.text == "We're closed on Sunday."
    assert model.seen[1][-1].content == '"Closed"'


@pytest.mark.integration
async def test_mcp_page(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp import Client

    async with Sandbox.start() as sandbox:
        for key, value in sandbox.env.items():
            monkeypatch.setenv(key, value)
        names = await asyncio.to_thread(run, "mcp.md", {})  # the page runs asyncio.run itself
        port = free_port()
        async with (
            serve_app(names["mcp_app"], port=port),
            Client(f"http://127.0.0.1:{port}/mcp") as client,
        ):
            hours = await client.call_tool("store_hours", {})
        await names["tac"].aclose()
    assert hours.structured_content == {"result": "9:00 to 18:00, Monday to Saturday"}


@pytest.mark.unit
def test_memory_adapters_page() -> None:
    for module in ("anthropic", "boto3", "google.genai"):
        pytest.importorskip(module, reason=f"needs {module} (opentac[anthropic,aws,google])")
    names = run("memory-adapters.md", {})
    assert "Prefers email" in names["claude"]._memory
    assert names["converse"].unwrapped is names["runtime"]


@pytest.mark.integration
async def test_aws_page(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("boto3", reason="needs boto3 (opentac[aws])")
    from tests.connectors._aws_standin import AWSStandIn

    stand_in = AWSStandIn()
    stand_in.chunks = ["Hello from Bedrock."]
    port = free_port()
    async with (
        serve_app(stand_in.app) as aws_url,
        Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox,
    ):
        env = {
            **sandbox.env,
            "AWS_ENDPOINT_URL": aws_url,  # boto3 sends every service there
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "secret",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        names = run("aws.md", {})
        async with serve_app(names["app"], port=port):
            reply = await sandbox.customer("sms").ask("hi")
        await names["tac"].aclose()
        # the page's Lambda forwards a signed webhook to the runtime (boto3 → the stand-in)
        body = json.dumps({"eventType": "CONVERSATION_UPDATED", "data": {"id": CONVERSATION}})
        query = f"bodySHA256={hashlib.sha256(body.encode()).hexdigest()}"
        url = f"https://fn.lambda-url.us-east-1.on.aws/webhook?{query}"
        signature = RequestValidator(sandbox.env["TWILIO_AUTH_TOKEN"]).compute_signature(url, {})
        event = {
            "rawPath": "/webhook",
            "rawQueryString": query,
            "headers": {"host": "fn.lambda-url.us-east-1.on.aws", "x-twilio-signature": signature},
            "body": body,
        }
        answer = await asyncio.to_thread(names["lambda_handler"], event, None)
    assert reply.text == "Hello from Bedrock."
    assert stand_in.agent_requests[0][1]["inputText"].endswith("User: hi")
    assert answer["statusCode"] == 200
    assert stand_in.runtime_requests[0][0] == CONVERSATION


@pytest.mark.integration
async def test_microsoft_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("agent_framework.openai", reason="needs agent-framework-openai")
    from agent_framework.openai import OpenAIChatCompletionClient

    model = FakeModel()
    model.call_tool("order_status", {"order_id": "A17"}).reply("It ships Monday.")
    port = free_port()
    monkeypatch.chdir(tmp_path)  # the page keeps sessions in ./agent-sessions
    with model.serve():
        client = OpenAIChatCompletionClient(model="m", api_key="k", base_url=model.base_url)
        async with Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox:
            for key, value in sandbox.env.items():
                monkeypatch.setenv(key, value)
            names = run("microsoft.md", {"client": client})
            async with serve_app(names["app"], port=port):
                reply = await sandbox.customer("sms").ask("Where is A17?")
            await names["tac"].aclose()
    assert reply.text == "It ships Monday."
    assert "Order A17 ships on Monday." in model.requests[1].tool_outputs[-1]
    assert list((tmp_path / "agent-sessions").iterdir())
    hosted = names["hosted"]  # the Hosted Agents section (calls: test_tac_microsoft_hosted.py)
    assert {"/invocations", "/invocations_ws"} <= {r.path for r in hosted.app.router.routes}
    assert names["sessions"].ttl == 86400
    await names["hosted_tac"].aclose()
    config = names["voice_live"].config  # the Voice Live section (calls: test_voice_live.py)
    assert config.ws_url.startswith("wss://my-resource.services.ai.azure.com/voice-live/")
    assert [tool["name"] for tool in config.tools] == ["order_status"]


@pytest.mark.integration
async def test_google_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example is its own app: the ADK one with a scripted model, the REST ones pointed
    (after they ran as written) at the stand-in of Google's endpoints."""
    pytest.importorskip("google.adk", reason="needs google-adk (opentac[google])")
    from google.adk.agents import Agent

    from tests.connectors._adk_fakes import ScriptedLlm
    from tests.connectors._google_standin import TOKEN, GoogleStandIn, df_text

    model = ScriptedLlm(script=[("opening_hours", {"day": "Sunday"}), "We're closed on Sunday."])
    studio_model = ScriptedLlm(script=["Hello from Agent Studio."])
    stand_in = GoogleStandIn(agent=Agent(name="studio_app", model=studio_model))
    stand_in.dialogflow = lambda body: df_text("Hello from Dialogflow.")
    stand_in.ces = lambda body: {"outputs": [{"text": "Hello from CES."}]}
    blocks = snippets("google.md")
    assert len(blocks) == 4
    replies: list[str] = []
    port = free_port()
    async with (
        serve_app(stand_in.app) as google_url,
        Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox,
    ):
        for key, value in sandbox.env.items():
            monkeypatch.setenv(key, value)
        for number, block in enumerate(blocks, 1):
            names: dict[str, Any] = {"__name__": "docs:google.md", "model": model}
            exec(compile(block, f"docs/connectors/google.md#{number}", "exec"), names)
            connector = names["connector"]
            if hasattr(connector, "rest"):  # a REST connector: Google's host becomes the stand-in's
                connector.base_url = google_url + urlsplit(connector.base_url).path
                connector.rest.token_provider = lambda: TOKEN
            async with serve_app(names["app"], port=port):
                replies.append((await sandbox.customer("sms").ask("Open on Sunday?")).text)
            await names["tac"].aclose()
    assert replies == [
        "We're closed on Sunday.",
        "Hello from Dialogflow.",
        "Hello from CES.",
        "Hello from Agent Studio.",
    ]
    result = model.seen[1].contents[-1].parts[0].function_response
    assert result is not None
    assert result.response == {"result": "Closed"}
    engine = "projects/my-project/locations/us-central1/reasoningEngines/1234567890"
    dialogflow, ces, *studio = [c.path for c in stand_in.calls]
    assert dialogflow.startswith("/v3/projects/my-project/locations/us-central1/agents/")
    assert dialogflow.endswith(":detectIntent")
    assert ces.startswith("/v1/projects/my-project/locations/us/apps/my-app-id/sessions/")
    assert studio == [f"/v1/{engine}/sessions", f"/v1/{engine}:streamQuery"]


@pytest.mark.integration
async def test_strands_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a real ``strands.Agent`` whose Strands model is scripted."""
    from tests.connectors.test_tac_aws_strands_real import ScriptedModel

    model = ScriptedModel()
    model.call_tool("order_status", {"order_id": "A17"}).reply("A17 ships on Monday.")
    port = free_port()
    async with Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox:
        for key, value in sandbox.env.items():
            monkeypatch.setenv(key, value)
        names = run("strands.md", {"model": model})
        async with serve_app(names["app"], port=port):
            reply = await sandbox.customer("sms").ask("Where is A17?")
        await names["tac"].aclose()
    assert reply.text == "A17 ships on Monday."
    assert names["connector"].agents  # one agent, for the conversation
