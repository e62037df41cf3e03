"""tac_aws.server.TACAgentCoreApp: a real bedrock_agentcore.BedrockAgentCoreApp on loopback,
reached as AgentCore reaches it. The sandbox's webhooks go to a stand-in of the webhook proxy
(the partner's Lambda), which forwards them as ``invoke_agent_runtime`` payloads to
``POST /invocations``; a ConversationRelay client calls ``/ws``."""

from __future__ import annotations

import pytest

pytest.importorskip("bedrock_agentcore", reason="needs bedrock-agentcore (opentac[agentcore])")

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tac.core.config import TACConfig
from tac.core.tac import TAC
from tac.sandbox import Sandbox, serve_app
from tac_aws.connectors import StrandsConnector
from tac_aws.server import TACAgentCoreApp
from tests._ports import free_port
from tests.connectors._strands_fakes import FakeStrandsAgent, Script

pytestmark = pytest.mark.integration


def webhook_proxy(runtime_url: str, forwarded: list[dict[str, Any]]) -> Starlette:
    """The partner's Lambda in front of AgentCore, as far as webhooks go."""

    async def webhook(request: Request) -> Response:
        payload = {
            "webhook_data": (await request.body()).decode(),
            "idempotency_token": request.headers.get("i-twilio-idempotency-token"),
        }
        forwarded.append(payload)
        async with httpx.AsyncClient() as client:
            answer = await client.post(f"{runtime_url}/invocations", json=payload, timeout=10)
        return Response(answer.content, status_code=answer.status_code)

    return Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])


@dataclass
class Runtime:
    sandbox: Sandbox
    app: TACAgentCoreApp
    script: Script
    forwarded: list[dict[str, Any]]
    url: str


@pytest_asyncio.fixture
async def runtime() -> AsyncIterator[Runtime]:
    script = Script()
    forwarded: list[dict[str, Any]] = []
    proxy_port, runtime_port = free_port(), free_port()
    runtime_url = f"http://127.0.0.1:{runtime_port}"
    async with Sandbox.start(app_url=f"http://127.0.0.1:{proxy_port}") as sandbox:
        tac = TAC(TACConfig.from_env(sandbox.env))
        connector = StrandsConnector(
            tac,
            lambda session: FakeStrandsAgent(script, [], "Be brief."),
            sms_config={"memory_mode": "always"},
        )
        app = TACAgentCoreApp(
            tac,
            voice_channel=connector.voice,
            messaging_channels=connector.channels.messaging,
            welcome_message="Hi, this is Acme.",
        )
        async with (
            serve_app(app.app, port=runtime_port),
            serve_app(webhook_proxy(runtime_url, forwarded), port=proxy_port),
        ):
            yield Runtime(sandbox, app, script, forwarded, runtime_url)


async def test_forwarded_webhooks_reach_the_agent(runtime: Runtime) -> None:
    sandbox, script, url = runtime.sandbox, runtime.script, runtime.url
    script.reply("A17 ships Monday.")
    customer = sandbox.customer("sms")
    assert (await customer.ask("Where is A17?")).text == "A17 ships Monday."
    assert script.calls[0].texts() == [("user", "Where is A17?")]
    assert "# Customer Context" in (script.calls[0].system_prompt or "")
    # AgentCore retries with the same token: answered once
    created = next(p for p in runtime.forwarded if '"COMMUNICATION_CREATED"' in p["webhook_data"])
    async with httpx.AsyncClient() as client:
        again = await client.post(f"{url}/invocations", json=created)
        assert again.json() == {"status": "duplicate"}
        bad = await client.post(f"{url}/invocations", json={"webhook_data": "not json"})
        assert bad.json()["status"] == "error"
        ping = await client.get(f"{url}/ping")
        assert ping.json()["status"] == "Healthy"
    assert len(script.calls) == 1


async def test_a_call_over_the_runtime_websocket_is_greeted(runtime: Runtime) -> None:
    runtime.script.reply("It ships on Monday.")
    configuration = runtime.app.tac.config.conversation_configuration_id
    # the TwiML the webhook proxy answers (there with a presigned wss:// URL)
    twiml = (
        "<Response><Connect><ConversationRelay "
        f'url="{runtime.url.replace("http", "ws", 1)}/ws" '
        f'conversationConfiguration="{configuration}"/></Connect></Response>'
    )
    async with runtime.sandbox.caller() as caller:
        await caller.dial(twiml=twiml)
        assert (await caller.next_reply(timeout=5)).text == "Hi, this is Acme."
        assert (await caller.ask("When does it ship?", timeout=5)).text == "It ships on Monday."
        await caller.hang_up()
    assert runtime.script.calls[0].texts()[-1] == ("user", "When does it ship?")


@pytest.mark.unit
async def test_a_runtime_needs_no_public_url() -> None:
    """The proxy builds the TwiML, so the runtime serves calls without knowing its URL."""
    config = TACConfig(
        account_sid="AC" + "0" * 32,
        auth_token="token",
        api_key="SK" + "0" * 32,
        api_secret="secret",
        phone_number="+18005550100",
    )
    tac = TAC(config)
    connector = StrandsConnector(tac, lambda session: FakeStrandsAgent(Script(), [], "Hi."))
    app = TACAgentCoreApp(tac, connector.voice, connector.channels.messaging)
    assert app.channels == [*connector.channels.messaging, connector.voice]
    assert "/twiml" not in {getattr(r, "path", None) for r in app.server.app.router.routes}
    await tac.aclose()
