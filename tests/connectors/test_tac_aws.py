"""tac_aws: Bedrock Agents and AgentCore runtimes reached by real boto3 clients (against a
local stand-in of the AWS endpoints), answering the sandbox's SMS and ConversationRelay calls."""

from __future__ import annotations

import pytest

pytest.importorskip("boto3", reason="needs boto3 (opentac[aws])")

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from fastapi import Request
from websockets.asyncio.server import ServerConnection, serve

from tac.connectors import ConnectorRouter
from tac.models.session import ConversationSession
from tac.sandbox import serve_app
from tac_aws.connectors import BedrockAgentCoreConnector, BedrockConnector, ConnectorChannels
from tac_aws.connectors.bedrock_agentcore import RuntimeConfig, WebSocketConfig
from tests.connectors._aws_standin import AWSStandIn, client
from tests.voice._harness import VoiceApp

pytestmark = pytest.mark.integration

ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/support-abc"


@pytest_asyncio.fixture
async def aws() -> AsyncIterator[tuple[AWSStandIn, str]]:
    stand_in = AWSStandIn()
    async with serve_app(stand_in.app) as url:
        yield stand_in, url


async def test_bedrock_agent_answers_sms_with_memory(start_app, aws) -> None:
    stand_in, url = aws
    stand_in.chunks = ["Your order ", "ships Monday."]
    connectors: list[BedrockConnector] = []

    def build(tac: Any) -> list[Any]:
        connector = BedrockConnector(
            tac,
            bedrock_client=client("bedrock-agent-runtime", url),
            config={"agentId": "AGENT1", "agentAliasId": "TSTALIASID"},
            sms_config={"memory_mode": "always"},
        )
        connectors.append(connector)
        return connector.channels.messaging

    app = await start_app(channels=build, setup=lambda tac: None)
    customer = app.sandbox.customer("sms")
    reply = await customer.ask("Where is my order?")
    assert reply.text == "Your order ships Monday."
    ((session_id, body),) = stand_in.agent_requests
    assert session_id == customer.conversation_id
    assert body["inputText"].startswith("# Customer Context")
    assert body["inputText"].endswith("User: Where is my order?")
    assert "tac-aws/" in app.tac.http.user_agent_suffix  # the partner User-Agent
    assert connectors[0].channels.get("VOICE") is connectors[0].voice


async def test_agentcore_http_streams_to_a_call(aws) -> None:
    stand_in, url = aws
    stand_in.tokens = ["It ", "ships ", "Monday."]
    runtime = client("bedrock-agentcore", url)

    def invoke(session: ConversationSession, message: str, memory: str | None) -> Any:
        payload = {"prompt": message, "memory_context": memory}
        return runtime.invoke_agent_runtime(
            agentRuntimeArn=ARN,
            runtimeSessionId=session.conversation_id + "-" + "x" * 20,
            payload=json.dumps(payload).encode(),
        )

    app = VoiceApp(
        channel_factory=lambda tac: BedrockAgentCoreConnector(tac, RuntimeConfig(http=invoke)).voice
    )
    async with app:
        async with app.call() as call:
            await call.say("When does it ship?")
            text, frames = await call.reply()
        await app.settled()
    assert text == "It ships Monday."
    assert [f["token"] for f in frames if f["type"] == "text"][:3] == ["It ", "ships ", "Monday."]
    assert stand_in.runtime_requests[0][1]["prompt"] == "When does it ship?"


async def test_agentcore_websocket_for_voice_forwards_interrupts(aws) -> None:
    received: list[dict[str, Any]] = []
    interrupted = asyncio.Event()

    async def runtime(socket: ServerConnection) -> None:
        async for raw in socket:
            message = json.loads(raw)
            received.append(message)
            if message.get("type") == "interrupt":
                interrupted.set()
                continue
            for token in ("Hello ", "from ", "AgentCore."):
                await socket.send(json.dumps({"type": "text", "token": token, "last": False}))
            await socket.send(json.dumps({"type": "text", "token": "", "last": True}))

    async with serve(runtime, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        from websockets.asyncio.client import connect

        async def open_socket(session: ConversationSession) -> Any:
            return await connect(f"ws://127.0.0.1:{port}/")

        def payload(session: ConversationSession, message: str, memory: str | None) -> dict:
            return {"type": "prompt", "voicePrompt": message}

        def http(*args: Any) -> Any:
            raise AssertionError("voice goes over the WebSocket")

        connector: list[BedrockAgentCoreConnector] = []

        def make(tac: Any) -> Any:
            connector.append(
                BedrockAgentCoreConnector(
                    tac,
                    {
                        "http": http,
                        "websocket": WebSocketConfig(factory=open_socket, payload_fn=payload),
                    },
                )
            )
            return connector[0].voice

        app = VoiceApp(channel_factory=make)
        async with app:
            async with app.call() as call:
                await call.say("Hi")
                assert (await call.reply())[0] == "Hello from AgentCore."
                await call.interrupt("Hello from")
                await asyncio.wait_for(interrupted.wait(), 5)
            await app.settled()
        assert received == [
            {"type": "prompt", "voicePrompt": "Hi"},
            {"type": "interrupt", "utterance_until_interrupt": "Hello from"},
        ]
        assert connector[0].agent_connections == {}  # closed with the call


def test_connector_channels_build_what_is_configured() -> None:
    from tac import TAC, TACConfig

    tac = TAC(
        TACConfig(
            account_sid="AC" + "0" * 32,
            auth_token="t",
            api_key="SK",
            api_secret="s",
            phone_number="+18005550100",
            whatsapp_number="whatsapp:+18005550100",
            conversation_configuration_id="conv_configuration_x",
        )
    )
    channels = ConnectorChannels(tac, sms_config={"memory_mode": "always"})
    assert channels.rcs is None
    assert channels.whatsapp is not None
    assert [c.channel for c in channels.messaging] == ["sms", "whatsapp", "chat"]
    assert channels.sms.memory_mode == "always"
    assert channels.get("RCS") is None
    assert ConnectorRouter.of(tac).owner("sms") is None  # channels alone claim nothing
    relay_only = TAC(tac.config.model_copy(update={"conversation_configuration_id": None}))
    voice_only = ConnectorChannels(relay_only)
    assert voice_only.messaging == []
    assert voice_only.sms is None


async def test_aws_server_behind_a_load_balancer() -> None:
    import httpx
    from twilio.request_validator import RequestValidator

    from tac import TAC, TACConfig
    from tac.channels import VoiceChannel
    from tac_aws.server import TACAWSFastAPIServer

    config = TACConfig(
        account_sid="AC" + "0" * 32,
        auth_token="token",
        api_key="SK",
        api_secret="s",
        phone_number="+18005550100",
        voice_public_domain="agent.example.com",
        log_level="WARNING",
    )
    tac = TAC(config)
    with pytest.raises(ValueError, match="public URL"):
        TACAWSFastAPIServer(TAC(config.model_copy(update={"voice_public_domain": None})))
    server = TACAWSFastAPIServer(tac, voice_channel=VoiceChannel(tac))

    @server.app.get("/whoami")
    async def whoami(request: Request) -> dict[str, str | None]:
        return {
            "host": request.headers.get("x-forwarded-host"),
            "proto": request.headers.get("x-forwarded-proto"),
        }

    form = {"CallSid": "CA" + "1" * 32, "From": "+14155550123", "To": "+18005550100"}
    signature = RequestValidator("token").compute_signature("https://agent.example.com/twiml", form)
    async with serve_app(server.app) as url, httpx.AsyncClient(base_url=url) as http:
        # the ALB sent no X-Forwarded-Host and plain http
        seen = await http.get("/whoami", headers={"X-Forwarded-Proto": "http"})
        twiml = await http.post("/twiml", data=form, headers={"X-Twilio-Signature": signature})
    assert seen.json() == {"host": "agent.example.com", "proto": "https"}
    assert twiml.status_code == 200
    assert "wss://agent.example.com/ws" in twiml.text
    await tac.aclose()
