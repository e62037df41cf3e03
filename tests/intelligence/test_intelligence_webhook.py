"""``POST /ci-webhook`` on the server: signed, 400 with a reason for bad bodies, never 500."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from twilio.request_validator import RequestValidator

from tac import TAC, TACConfig
from tac.server import TACFastAPIServer, TACServerConfig

from .test_intelligence_processor import CONFIGURATION, PROFILE, STORE, example

pytestmark = pytest.mark.unit

TOKEN = "token"
BASE = "http://app.test"


class FakeTwilio:
    """The Orchestrator configuration (for the store id) and Memory's write endpoints."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.fail = False
        app = FastAPI()

        @app.get("/conversations/v2/ControlPlane/Configurations/{cid}")
        async def configuration(cid: str) -> dict[str, Any]:
            return {"id": cid, "memoryStoreId": STORE, "description": "x"}

        @app.post("/memory/v1/Stores/{store}/Profiles/{profile}/{kind}")
        async def write(store: str, profile: str, kind: str, request: Request) -> JSONResponse:
            if self.fail:
                return JSONResponse({"message": "unavailable"}, status_code=503)
            self.writes.append(f"{profile}/{kind}")
            return JSONResponse({"message": "accepted"}, status_code=202)

        self.transport = httpx.ASGITransport(app=app)


def make_server(twilio: FakeTwilio, *, ci: bool = True) -> tuple[TAC, TACFastAPIServer]:
    config = TACConfig(
        account_sid="AC" + "0" * 32,
        auth_token=TOKEN,
        api_key="SK" + "1" * 32,
        api_secret="secret",
        phone_number="+15005550006",
        conversation_configuration_id="conv_configuration_x",
        conversation_intelligence_config={"configuration_id": CONFIGURATION} if ci else None,
        api_base_url="http://twilio.test",
        public_base_url=BASE,
    )
    tac = TAC(config, transport=twilio.transport)
    return tac, TACFastAPIServer(tac, config=TACServerConfig())


async def post_signed(
    server: TACFastAPIServer, body: bytes, *, path: str = "/ci-webhook", sign: bool = True
) -> httpx.Response:
    query = f"bodySHA256={hashlib.sha256(body).hexdigest()}"
    url = f"{BASE}{path}?{query}"
    headers = {"Content-Type": "application/json"}
    if sign:
        headers["X-Twilio-Signature"] = RequestValidator(TOKEN).compute_signature(url, {})
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.post(url, content=body, headers=headers)


async def test_summary_event_is_written_and_answered_with_the_result() -> None:
    twilio = FakeTwilio()
    tac, server = make_server(twilio)
    answer = await post_signed(server, json.dumps(example("summary")).encode())
    assert answer.status_code == 200
    assert answer.json() == {
        "success": True,
        "event_type": "summary",
        "skipped": False,
        "skip_reason": None,
        "error": None,
        "created_count": 1,
        "summaries_created": 1,
        "observations_created": 0,
    }
    assert twilio.writes == [f"{PROFILE}/ConversationSummaries"]
    await tac.aclose()


async def test_unsigned_is_403_and_bad_bodies_are_400_with_a_reason() -> None:
    twilio = FakeTwilio()
    tac, server = make_server(twilio)
    unsigned = await post_signed(server, b"{}", sign=False)
    assert unsigned.status_code == 403
    not_json = await post_signed(server, b"{not json")
    assert not_json.status_code == 400
    assert not_json.json()["message"] == "webhook body must be JSON"
    not_object = await post_signed(server, b"[1, 2]")
    assert not_object.status_code == 400
    assert "must be a JSON object" in not_object.json()["message"]
    event = example("summary")
    del event["operatorResults"][0]["operator"]
    missing = await post_signed(server, json.dumps(event).encode())
    assert missing.status_code == 400
    assert "operatorResults.0.operator" in missing.json()["message"]
    assert twilio.writes == []
    await tac.aclose()


async def test_memory_failure_is_502_and_reaches_on_error() -> None:
    twilio = FakeTwilio()
    tac, server = make_server(twilio)
    errors: list[dict[str, Any]] = []
    tac.on_error(lambda exc, context: errors.append(context))
    twilio.fail = True
    answer = await post_signed(server, json.dumps(example("summary")).encode())
    assert answer.status_code == 502
    assert answer.json()["success"] is False
    assert errors == [
        {
            "source": "conversation_intelligence",
            "conversation_id": example("summary")["conversationId"],
        }
    ]
    twilio.fail = False
    retried = await post_signed(server, json.dumps(example("summary")).encode())
    assert retried.json()["created_count"] == 1
    await tac.aclose()


async def test_route_exists_only_when_intelligence_is_configured() -> None:
    twilio = FakeTwilio()
    tac, server = make_server(twilio, ci=False)
    answer = await post_signed(server, json.dumps(example("summary")).encode())
    assert answer.status_code == 404
    await tac.aclose()
    tac2, server2 = make_server(twilio)
    paths = {getattr(route, "path", None) for route in server2.app.routes}
    assert "/ci-webhook" in paths
    await tac2.aclose()


async def test_hostile_bodies_get_4xx_and_an_upstream_failure_502() -> None:
    twilio = FakeTwilio()
    tac, server = make_server(twilio)
    errors: list[dict[str, Any]] = []
    tac.on_error(lambda exc, context: errors.append(context))
    deep = await post_signed(server, b'{"a": ' * 5000 + b"1" + b"}" * 5000)
    assert deep.status_code == 400
    assert deep.json() == {"status": "error", "message": "webhook body must be JSON"}
    event = example("summary")
    event["conversation_id"] = event.pop("conversationId")  # snake_case, as no Twilio sends
    twilio.fail = True
    answer = await post_signed(server, json.dumps(event).encode())
    # the model takes the field by its Python name too; Memory's failure is the upstream's
    assert answer.status_code == 502
    assert answer.json()["success"] is False
    assert errors == [
        {"source": "conversation_intelligence", "conversation_id": event["conversation_id"]}
    ]
    await tac.aclose()
