"""Studio v2 Flow Executions and the voice handoff webhook in the sandbox."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from _products_support import STUDIO, asgi_client, ctx_of, make_app, serve, twilio_client
from twilio.base.exceptions import TwilioRestException

pytestmark = pytest.mark.integration

HANDOFF = {
    "HandoffData": {
        "conversationId": "conv_conversation_0ap7mmmd7f0vf68q9wsz9z3h6d",
        "storeId": "mem_store_11cnpejzxv90ee1fyqzenrjvbh",
        "profileId": "mem_profile_1rh5048d9qrfn67babyc2dpgcr",
        "attributes": {"department": "billing", "reason": "Customer wants a human"},
    }
}
# Keys of twilio-specs/examples/studio-execution-response.json
EXECUTION_KEYS = {
    "url",
    "sid",
    "account_sid",
    "flow_sid",
    "context",
    "contact_channel_address",
    "contact_sid",
    "flow_version",
    "status",
    "date_created",
    "date_updated",
    "initiated_by",
    "links",
}


@pytest.fixture
def app() -> Any:
    return make_app([STUDIO])


async def test_official_client_creates_and_fetches_an_execution(app: Any) -> None:
    ctx = ctx_of(app)
    flow = ctx.identity.studio_flow_sid
    published: list[dict[str, Any]] = []
    ctx.bus.subscribe("studio.execution.created", published.append)
    async with serve(app) as url:
        studio = twilio_client(app, url).studio.v2

        def scenario() -> tuple[Any, Any]:
            created = studio.flows(flow).executions.create(
                to="+14155550123", from_="+18005550100", parameters=HANDOFF
            )
            return created, studio.flows(flow).executions(created.sid).fetch()

        created, fetched = await asyncio.to_thread(scenario)
    assert created.sid.startswith("FN")
    assert created.flow_sid == flow
    assert created.status == "active"
    assert created.contact_channel_address == "+14155550123"
    assert fetched.sid == created.sid
    assert published[0]["parameters"] == HANDOFF
    async with asgi_client(app) as http:
        raw = (await http.get(f"/studio/v2/Flows/{flow}/Executions/{created.sid}")).json()
        recorded = (await http.get("/sandbox/studio/executions")).json()["executions"]
        listed = (await http.get(f"/studio/v2/Flows/{flow}/Executions")).json()
    assert set(raw) == EXECUTION_KEYS
    assert raw["links"]["steps"].endswith(f"/Executions/{created.sid}/Steps")
    assert recorded == [
        {
            "execution": raw,
            "to": "+14155550123",
            "from": "+18005550100",
            "parameters": HANDOFF,
        }
    ]
    assert [e["sid"] for e in listed["executions"]] == [created.sid]
    assert listed["meta"]["key"] == "executions"


@pytest.mark.parametrize(
    ("form", "fragment"),
    [
        ({"From": "+18005550100"}, "To"),
        ({"To": "+14155550123"}, "From"),
        ({"To": "+1", "From": "+1", "Parameters": "{nope"}, "Parameters"),
        ({"To": "+1", "From": "+1", "Parameters": "[1, 2]"}, "Parameters"),
    ],
)
async def test_bad_execution_forms_are_400(app: Any, form: dict[str, str], fragment: str) -> None:
    flow = ctx_of(app).identity.studio_flow_sid
    async with asgi_client(app) as http:
        response = await http.post(f"/studio/v2/Flows/{flow}/Executions", data=form)
    assert response.status_code == 400
    assert response.json()["status"] == 400
    assert fragment in response.json()["message"]


async def test_official_client_missing_to_raises_twilio_400(app: Any) -> None:
    flow = ctx_of(app).identity.studio_flow_sid
    async with serve(app) as url:
        studio = twilio_client(app, url).studio.v2
        with pytest.raises(TwilioRestException) as caught:
            await asyncio.to_thread(
                lambda: studio.flows(flow).executions.create(to="", from_="+18005550100")
            )
    assert caught.value.status == 400


async def test_unknown_flow_is_404(app: Any) -> None:
    async with asgi_client(app) as http:
        response = await http.post(
            "/studio/v2/Flows/FW00000000000000000000000000000000/Executions",
            data={"To": "+1", "From": "+1"},
        )
    assert response.status_code == 404
    assert response.json()["code"] == 20404


async def test_voice_handoff_webhook_records_handoff_data_and_answers_twiml(app: Any) -> None:
    ctx = ctx_of(app)
    account, flow = ctx.identity.account_sid, ctx.identity.studio_flow_sid
    form = {
        "AccountSid": account,
        "CallSid": "CA564d49f5cd87626cbb46454d69d652d4",
        "CallStatus": "in-progress",
        "SessionStatus": "ended",
        "HandoffData": json.dumps(HANDOFF["HandoffData"]),
    }
    async with asgi_client(app) as http:
        response = await http.post(
            f"/webhooks/v1/Accounts/{account}/Flows/{flow}",
            params={"Trigger": "incomingCall"},
            data=form,
        )
        handoffs = (await http.get("/sandbox/studio/handoffs")).json()["handoffs"]
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Say>Connecting you to an agent.</Say>" in response.text
    assert handoffs[0]["trigger"] == "incomingCall"
    assert handoffs[0]["callSid"] == form["CallSid"]
    assert handoffs[0]["handoffData"] == HANDOFF["HandoffData"]
    assert handoffs[0]["params"]["SessionStatus"] == "ended"


async def test_studio_faults_apply(app: Any) -> None:
    flow = ctx_of(app).identity.studio_flow_sid
    async with asgi_client(app) as http:
        await http.put("/sandbox/faults/studio", json={"error_rate": 1})
        failed = await http.post(
            f"/studio/v2/Flows/{flow}/Executions", data={"To": "+1", "From": "+1"}
        )
        executions = (await http.get("/sandbox/studio/executions")).json()["executions"]
    assert failed.status_code == 500
    assert executions == []
