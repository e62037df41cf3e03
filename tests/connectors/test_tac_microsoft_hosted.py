"""tac_microsoft.TACHostedAgentsApp and CosmosDBAgentSessionStore: an Agent Framework agent (its
OpenAI chat client talking to tac.testing.FakeModel) in a Foundry hosted agent, reached over
real HTTP and WebSocket as the platform reaches it.

In front of the app sits a stand-in of API Management as Hosted Agents deployments configure
it: it checks Twilio's signature, turns Twilio's forms into JSON (``{"CallSid": ["CA…"]}``),
sends every request to ``POST /invocations?agent_session_id=<conversation or call>`` and the
call's socket to ``/invocations_ws``. Sessions go to a small in-process container that behaves
as Cosmos DB's does (system properties on reads, a 404 error for a missing item).
"""

from __future__ import annotations

import pytest

pytest.importorskip("agent_framework.openai", reason="needs agent-framework-openai (dev extra)")

import copy
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
import pytest_asyncio
from agent_framework import Agent, AgentSession
from agent_framework.openai import OpenAIChatCompletionClient
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from twilio.request_validator import RequestValidator

from tac.core.config import TACConfig
from tac.core.tac import TAC
from tac.sandbox import Sandbox, serve_app
from tac.server import TACServerConfig
from tac.server.signature import FormParams, validate_signature
from tac.testing import FakeModel
from tac_microsoft import (
    AgentFrameworkConnector,
    CosmosDBAgentSessionStore,
    StarletteWebSocketAdapter,
    TACHostedAgentsApp,
)
from tests._ports import free_port

pytestmark = pytest.mark.integration


class CosmosNotFound(Exception):
    """What azure-cosmos raises for a missing item (``CosmosResourceNotFoundError``)."""

    status_code = 404


class CosmosContainer:
    """An async Cosmos DB container in memory: point reads and writes on partition key
    ``/id``, documents stored as JSON and read back with the system properties."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.writes = 0

    async def read_item(self, item: str, partition_key: str) -> dict[str, Any]:
        assert item == partition_key, "the container is partitioned on /id"
        if item not in self.items:
            raise CosmosNotFound(f"Entity with the specified id does not exist: {item}")
        document = json.loads(self.items[item])
        document.update(_rid="abc==", _self="dbs/x/colls/y/docs/z", _etag='"0"', _ts=time.time())
        return dict(document)

    async def upsert_item(self, body: dict[str, Any]) -> dict[str, Any]:
        self.items[body["id"]] = json.dumps(body)
        self.writes += 1
        return copy.deepcopy(body)

    async def delete_item(self, item: str, partition_key: str) -> None:
        assert item == partition_key
        if self.items.pop(item, None) is None:
            raise CosmosNotFound(f"Entity with the specified id does not exist: {item}")


class APIManagement:
    """The gateway in front of a hosted agent: Twilio's three HTTP routes and its socket
    mapped onto the platform's two routes, with the session affinity parameter."""

    FORM_ROUTES = ("/twiml", "/conversation-relay-callback")

    def __init__(self, app: ASGIApp, public_url: str, auth_token: str) -> None:
        self.app = app
        self.public_url = public_url
        self.validator = RequestValidator(auth_token)
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            scope = {**scope, "path": "/invocations_ws", "raw_path": b"/invocations_ws"}
        elif scope["type"] == "http" and scope["path"] in (*self.FORM_ROUTES, "/webhook"):
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            forwarded = self._forward(scope, body)
            if forwarded is None:
                await JSONResponse({"error": "Invalid Twilio signature"}, 403)(scope, receive, send)
                return
            scope, body = forwarded
            sent = False

            async def receive_body() -> Message:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}

            receive = receive_body
        await self.app(scope, receive, send)

    def _forward(self, scope: Scope, body: bytes) -> tuple[Scope, bytes] | None:
        query = scope.get("query_string", b"").decode()
        url = f"{self.public_url}{scope['path']}" + (f"?{query}" if query else "")
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        signature = headers.get("x-twilio-signature", "")
        signed: bytes | FormParams = body
        if scope["path"] in self.FORM_ROUTES:
            signed = FormParams(parse_qsl(body.decode(), keep_blank_values=True))
        if not validate_signature(self.validator, url, signed, signature):
            return None
        if scope["path"] in self.FORM_ROUTES:  # APIM's form-as-JSON: every field a list
            fields: dict[str, list[str]] = {}
            for name, value in parse_qsl(body.decode(), keep_blank_values=True):
                fields.setdefault(name, []).append(value)
            session = fields["CallSid"][0]
            body = json.dumps(fields).encode()
        else:
            data = json.loads(body).get("data") or {}
            session = data.get("conversationId") or data.get("id") or ""
        self.seen.append((scope["path"], session))
        kept = [
            (k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")
        ]
        kept += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        return (
            {
                **scope,
                "path": "/invocations",
                "raw_path": b"/invocations",
                "query_string": f"agent_session_id={quote(session)}".encode(),
                "headers": kept,
            },
            body,
        )


@dataclass
class Hosted:
    sandbox: Sandbox
    tac: TAC
    server: TACHostedAgentsApp
    gateway: APIManagement
    model: FakeModel
    container: CosmosContainer
    url: str


@pytest_asyncio.fixture
async def hosted() -> AsyncIterator[Hosted]:
    model = FakeModel()
    container = CosmosContainer()
    port = free_port()
    with model.serve():
        async with Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox:
            tac = TAC(TACConfig.from_env(sandbox.env))
            client = OpenAIChatCompletionClient(model="m", api_key="k", base_url=model.base_url)
            connector = AgentFrameworkConnector(
                tac,
                lambda session: Agent(client, "Be brief."),
                session_store=CosmosDBAgentSessionStore(container=container),
            )
            server = TACHostedAgentsApp(
                tac,
                voice_channel=connector.voice_channel,
                messaging_channels=connector.messaging_channels,
                config=TACServerConfig(host="127.0.0.1", port=port, shutdown_grace_period=5),
            )
            gateway = APIManagement(
                server.app, sandbox.env["TAC_PUBLIC_BASE_URL"], tac.config.auth_token
            )
            async with serve_app(gateway, port=port):
                yield Hosted(
                    sandbox, tac, server, gateway, model, container, f"http://127.0.0.1:{port}"
                )
            await tac.aclose()


async def test_messages_are_answered_through_invocations(hosted: Hosted) -> None:
    hosted.model.reply("A17 ships Monday.")
    customer = hosted.sandbox.customer("sms")
    assert (await customer.ask("Where is A17?")).text == "A17 ships Monday."
    cid = customer.conversation_id
    assert cid is not None
    # the webhooks went through /invocations with the conversation as the sandbox affinity
    assert ("/webhook", cid) in hosted.gateway.seen
    # the session was saved to "Cosmos DB" as {"id": ..., **AgentSession.to_dict()}
    document = json.loads(hosted.container.items[cid])
    assert document["id"] == cid
    assert AgentSession.from_dict({k: v for k, v in document.items() if k != "id"})
    hosted.model.reply("Still Monday.")
    assert (await customer.ask("And now?")).text == "Still Monday."
    assert ("assistant", "A17 ships Monday.") in hosted.model.requests[1].messages


async def test_a_call_gets_the_session_affine_websocket(hosted: Hosted) -> None:
    hosted.model.reply("It ships Monday.")
    async with hosted.sandbox.caller() as caller:
        await caller.dial()
        twiml = caller.twiml
        assert twiml is not None
        call_sid = caller.call_sid
        assert twiml.url == f"{hosted.url.replace('http', 'ws', 1)}/ws?agent_session_id={call_sid}"
        assert twiml.parameters["agent_session_id"] == call_sid
        assert (await caller.ask("When does it ship?", timeout=5)).text == "It ships Monday."
        await caller.hang_up()
    assert ("/twiml", call_sid) in hosted.gateway.seen
    # the <Connect action> callback (here the sandbox's Studio flow takes it): through the
    # gateway, /invocations tells it from a new call's TwiML request by its session fields
    fields = {
        "AccountSid": hosted.tac.config.account_sid,
        "CallSid": call_sid,
        "CallStatus": "completed",
        "SessionId": "VX" + "0" * 32,
        "SessionStatus": "ended",
    }
    url = f"{hosted.url}/conversation-relay-callback"
    signature = RequestValidator(hosted.tac.config.auth_token).compute_signature(url, fields)
    async with httpx.AsyncClient() as http:
        answer = await http.post(url, data=fields, headers={"X-Twilio-Signature": signature})
        forged = await http.post(url, data=fields, headers={"X-Twilio-Signature": "x" * 27 + "="})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/xml"
    assert "ConversationRelay" not in answer.text  # not a new call's TwiML
    assert ("/conversation-relay-callback", call_sid) in hosted.gateway.seen
    assert forged.status_code == 403


async def test_invocations_refuse_what_they_cannot_place(hosted: Hosted) -> None:
    invocations = f"{hosted.url}/invocations"
    webhook = {"eventType": "CONVERSATION_UPDATED", "data": {"id": "conv_a", "status": "CLOSED"}}
    async with httpx.AsyncClient() as http:
        wrong_session = await http.post(f"{invocations}?agent_session_id=conv_b", json=webhook)
        unknown = await http.post(invocations, json={"hello": "there"})
        not_json = await http.post(invocations, content=b"<xml/>")
        wrong_call = await http.post(
            f"{invocations}?agent_session_id=CA2", json={"CallSid": ["CA1"]}
        )
        ready = await http.get(f"{hosted.url}/readiness")
        huge = await http.post(invocations, content=b"{" + b" " * 2_000_000 + b"}")
        # an unknown conversation's event: the server's webhook path ignores it
        ignored = await http.post(f"{invocations}?agent_session_id=conv_a", json=webhook)
    assert wrong_session.status_code == 400
    assert "agent_session_id" in wrong_session.json()["message"]
    assert unknown.status_code == 400
    assert not_json.status_code == 400
    assert wrong_call.status_code == 400
    assert ready.status_code == 200
    assert huge.status_code == 413
    assert ignored.json()["status"] in ("ok", "ignored")


@pytest.mark.unit
async def test_cosmos_store_round_trip_ttl_and_missing_items() -> None:
    container = CosmosContainer()
    store = CosmosDBAgentSessionStore(container=container, ttl=3600)
    assert await store.load("conv_1") is None
    session = AgentSession(session_id="conv_1")
    session.state["note"] = "prefers email"
    await store.save("conv_1", session)
    assert json.loads(container.items["conv_1"])["ttl"] == 3600
    loaded = await store.load("conv_1")
    assert loaded is not None
    assert loaded.session_id == "conv_1"
    assert loaded.state["note"] == "prefers email"
    await store.delete("conv_1")
    await store.delete("conv_1")  # a second delete is not an error
    assert await store.load("conv_1") is None
    await store.close()
    with pytest.raises(ValueError, match="endpoint"):
        CosmosDBAgentSessionStore()


@pytest.mark.unit
def test_hosted_app_checks_its_arguments_and_takes_the_platform_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = TACConfig(
        account_sid="AC" + "0" * 32,
        auth_token="token",
        api_key="SK" + "0" * 32,
        api_secret="secret",
        phone_number="+18005550100",
    )
    tac = TAC(config)
    monkeypatch.delenv("TWILIO_SERVER_PORT", raising=False)
    monkeypatch.setenv("PORT", "9123")
    assert TACHostedAgentsApp(tac).config.port == 9123
    monkeypatch.delenv("PORT")
    assert TACHostedAgentsApp(tac).config.port == 8088
    with pytest.raises(TypeError, match="VoiceChannel"):
        TACHostedAgentsApp(tac, voice_channel=object())  # type: ignore[arg-type]
    assert issubclass(StarletteWebSocketAdapter, object)
