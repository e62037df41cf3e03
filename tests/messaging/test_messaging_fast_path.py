"""The webhook route's early drop and the signature check's fast URL path."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from test_messaging_e2e import Agent, signed_post

from tac.channels import SMSChannel
from tac.server.signature import _query_value, _request_url
from tac.state import ClaimResult

pytestmark = pytest.mark.integration


def _own(address: str, event_type: str, content: Any) -> bytes:
    data = {
        "id": "comms_own_1",
        "conversationId": "conv_fast_1",
        "author": {"address": address, "channel": "SMS", "participantId": "p_agent"},
        "content": content,
    }
    return json.dumps({"eventType": event_type, "data": data}).encode()


async def test_agents_own_messages_are_ignored_before_validation_or_claim(start_app) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent)
    address = app.channel("sms").get_agent_address().address
    # ``content.type`` of the wrong type would fail validation: the early drop never gets there.
    for event_type in ("COMMUNICATION_CREATED", "COMMUNICATION_UPDATED"):
        body = _own(address, event_type, {"type": 7, "text": "ok"})
        first = await signed_post(app, body, token="tok-own")
        assert (first.status_code, first.json()) == (200, {"status": "ignored"})
    # Nothing was claimed: the token is still free for an event the app takes.
    claim = await app.tac.session_store.claim("tok-own:COMMUNICATION_CREATED", 30.0)
    assert claim is ClaimResult.CLAIMED
    assert agent.turns == []


async def test_invalid_customer_message_still_gets_400(start_app) -> None:
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=Agent())
    body = _own("+14155550100", "COMMUNICATION_CREATED", {"type": 7, "text": "hi"})
    response = await signed_post(app, body)
    assert response.status_code == 400
    assert "content" in response.json()["message"]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "bodySHA256=abc",
        "a=1&bodySHA256=abc&bodySHA256=def",
        "bodySHA256=",
        "x=%20&bodySHA256=a+b",
    ],
)
def test_query_value_matches_parse_qsl(query: str) -> None:
    assert _query_value(query, "bodySHA256") == dict(parse_qsl(query)).get("bodySHA256")


def test_fast_signature_url_matches_starlettes() -> None:
    from starlette.requests import Request

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "path": "/webhook",
        "root_path": "",
        "query_string": b"bodySHA256=abc&x=%2F",
        "headers": [(b"host", b"127.0.0.1:8000")],
    }
    request = Request(scope)
    expected = f"https://agent.example.com/webhook?{request.url.query}"
    assert _request_url(request, "https://agent.example.com/") == expected
    assert _request_url(Request({**scope, "root_path": "/app"}), "https://agent.example.com")


async def test_webhook_shortcut_keeps_the_users_app_middleware_and_routes() -> None:
    import httpx
    from fastapi import FastAPI, Request
    from tests._ports import free_port

    from tac.core.config import TACConfig
    from tac.core.tac import TAC
    from tac.sandbox import Sandbox, serve_app
    from tac.server import TACFastAPIServer, TACServerConfig

    seen: list[tuple[str, str]] = []
    user_app = FastAPI()

    @user_app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        seen.append((request.method, request.url.path))
        return await call_next(request)

    @user_app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "up"}

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with Sandbox.start(app_url=url) as sandbox:
        tac = TAC(TACConfig.from_env(sandbox.env))
        tac.on_message_ready(lambda message, session, memory: f"echo: {message}")
        server = TACFastAPIServer(
            tac=tac,
            messaging_channels=[SMSChannel(tac)],
            config=TACServerConfig(host="127.0.0.1", port=port),
            app=user_app,
        )
        assert server.app is user_app
        async with serve_app(server.app, port=port), httpx.AsyncClient(base_url=url) as http:
            answer = await sandbox.customer("sms").ask("hi", timeout=5)
            assert answer.text == "echo: hi"
            assert (await http.get("/health")).json() == {"status": "up"}
            unsigned = await http.post("/webhook", content=b"{}")
            assert unsigned.status_code == 403
            assert unsigned.json() == {"detail": "Invalid Twilio signature"}
            assert (await http.get("/webhook")).status_code == 405
    assert ("POST", "/webhook") in seen
    assert ("GET", "/health") in seen
    assert seen.count(("GET", "/webhook")) == 1


async def test_bodies_over_the_cap_get_413_on_opentacs_routes_only() -> None:
    import hashlib

    import httpx
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from twilio.request_validator import RequestValidator

    from tac.channels.voice import VoiceChannel
    from tac.core.config import TACConfig
    from tac.core.tac import TAC
    from tac.sandbox import serve_app
    from tac.server import TACFastAPIServer, TACServerConfig

    user_app = FastAPI()

    async def upload(request: Request) -> JSONResponse:
        return JSONResponse({"size": len(await request.body())})

    user_app.add_route("/upload", upload, methods=["POST"])

    config = TACConfig(
        account_sid="AC" + "0" * 32,
        auth_token="token",
        api_key="SKx",
        api_secret="s",
        phone_number="+15005550006",
        conversation_configuration_id="conv_configuration_x",
        public_base_url="http://127.0.0.1:9",
    )
    tac = TAC(config)
    server = TACFastAPIServer(
        tac=tac,
        voice_channel=VoiceChannel(tac),
        messaging_channels=[SMSChannel(tac)],
        config=TACServerConfig(max_request_body_bytes=1000),
        app=user_app,
    )
    small = json.dumps({"eventType": "SOMETHING_NEW", "data": {}}).encode()
    big = json.dumps({"eventType": "COMMUNICATION_CREATED", "pad": "x" * 2000}).encode()

    def signed(body: bytes) -> tuple[str, dict[str, str]]:
        path = f"/webhook?bodySHA256={hashlib.sha256(body).hexdigest()}"
        signature = RequestValidator("token").compute_signature(f"http://127.0.0.1:9{path}", {})
        return path, {"X-Twilio-Signature": signature, "Content-Type": "application/json"}

    async def chunks(body: bytes) -> Any:
        for start in range(0, len(body), 300):
            yield body[start : start + 300]

    async with serve_app(server.app) as url, httpx.AsyncClient(base_url=url) as http:
        path, headers = signed(small)
        assert (await http.post(path, content=small, headers=headers)).status_code == 200
        path, headers = signed(big)
        too_big = await http.post(path, content=big, headers=headers)
        assert too_big.status_code == 413
        assert too_big.json() == {
            "status": "error",
            "message": "request body larger than 1000 bytes",
        }
        streamed = await http.post(path, content=chunks(big), headers=headers)  # no length
        assert streamed.status_code == 413
        twiml = await http.post("/twiml", data={"CallSid": "CA1", "Pad": "y" * 20_000})
        assert twiml.status_code == 413
        upload = await http.post("/upload", content=b"z" * 5000)
        assert upload.json() == {"size": 5000}  # the user's own routes keep their own rules
