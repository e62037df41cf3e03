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
