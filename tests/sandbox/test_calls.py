"""The Calls API in the sandbox: create, update to completed, fetch, events on the bus."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _products_support import CALLS, asgi_client, ctx_of, make_app, serve, twilio_client
from twilio.base.exceptions import TwilioRestException

pytestmark = pytest.mark.integration

TWIML = (
    '<Response><Connect action="https://agent.example.com/cb">'
    '<ConversationRelay url="wss://agent.example.com/ws"/></Connect></Response>'
)
# Keys of twilio-specs/examples/voice-call-resource.json
CALL_KEYS = {
    "account_sid",
    "annotation",
    "answered_by",
    "api_version",
    "caller_name",
    "date_created",
    "date_updated",
    "direction",
    "duration",
    "end_time",
    "forwarded_from",
    "from",
    "from_formatted",
    "group_sid",
    "parent_call_sid",
    "phone_number_sid",
    "price",
    "price_unit",
    "queue_time",
    "sid",
    "start_time",
    "status",
    "subresource_uris",
    "to",
    "to_formatted",
    "trunk_sid",
    "uri",
}


@pytest.fixture
def app() -> Any:
    return make_app([CALLS])


def _calls_path(app: Any) -> str:
    return f"/api/2010-04-01/Accounts/{ctx_of(app).identity.account_sid}/Calls"


async def test_official_client_creates_and_hangs_up_a_call(app: Any) -> None:
    ctx = ctx_of(app)
    events: list[tuple[str, dict[str, Any]]] = []
    ctx.bus.subscribe("call.created", lambda p: events.append(("created", p)))
    ctx.bus.subscribe("call.updated", lambda p: events.append(("updated", p)))
    async with serve(app) as url:
        client = twilio_client(app, url)

        def scenario() -> tuple[Any, Any, Any]:
            call = client.calls.create(
                to="+14155550123",
                from_="+18005550100",
                twiml=TWIML,
                status_callback="https://agent.example.com/twilio/call-events/status",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                machine_detection="Enable",
                async_amd="true",
                async_amd_status_callback="https://agent.example.com/twilio/call-events/amd",
                record=True,
                timeout=30,
            )
            ended = client.calls(call.sid).update(status="completed")
            return call, ended, client.calls(call.sid).fetch()

        call, ended, fetched = await asyncio.to_thread(scenario)
    assert call.sid.startswith("CA")
    assert call.status == "queued"
    assert call.direction == "outbound-api"
    assert call.to_formatted == "(415) 555-0123"
    assert ended.status == "completed"
    assert ended.end_time is not None
    assert fetched.status == "completed"
    assert [kind for kind, _ in events] == ["created", "updated"]
    created = events[0][1]
    assert created["params"]["Twiml"] == TWIML
    assert created["params"]["StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    assert created["params"]["AsyncAmd"] == "true"
    assert events[1][1]["previous_status"] == "queued"
    assert events[1][1]["status"] == "completed"


async def test_call_json_matches_twilio_shape(app: Any) -> None:
    async with asgi_client(app) as http:
        response = await http.post(
            _calls_path(app) + ".json",
            data={"To": "+14155550123", "From": "+18005550100", "Url": "https://a.example/twiml"},
        )
        call = response.json()
        listed = (await http.get(_calls_path(app) + ".json")).json()
        recorded = (await http.get("/sandbox/calls")).json()["calls"]
    assert response.status_code == 201
    assert set(call) == CALL_KEYS
    assert call["uri"] == f"/2010-04-01/Accounts/{call['account_sid']}/Calls/{call['sid']}.json"
    assert call["date_created"].endswith("+0000")
    assert [c["sid"] for c in listed["calls"]] == [call["sid"]]
    assert recorded[0]["params"]["Url"] == "https://a.example/twiml"


@pytest.mark.parametrize(
    ("form", "code", "fragment"),
    [
        ({"From": "+18005550100", "Twiml": TWIML}, 21201, "To"),
        ({"To": "+14155550123", "Twiml": TWIML}, 21213, "From"),
        ({"To": "+14155550123", "From": "+18005550100"}, 21205, "Url"),
        ({"To": "+1", "From": "+1", "Twiml": "x" * 4001}, 20001, "4000"),
        ({"To": "+1", "From": "+1", "Url": "not-a-url"}, 21205, "Url"),
        ({"To": "+1", "From": "+1", "Twiml": TWIML, "Timeout": "soon"}, 20001, "Timeout"),
        ({"To": "+1", "From": "+1", "Twiml": TWIML, "Timeout": "0"}, 20001, "Timeout"),
        ({"To": "+1", "From": "+1", "Twiml": TWIML, "MachineDetection": "Yes"}, 20001, "Machine"),
        (
            {"To": "+1", "From": "+1", "Twiml": TWIML, "StatusCallbackEvent": "hung-up"},
            20001,
            "StatusCallbackEvent",
        ),
    ],
)
async def test_bad_call_forms_are_twilio_400(
    app: Any, form: dict[str, str], code: int, fragment: str
) -> None:
    async with asgi_client(app) as http:
        response = await http.post(_calls_path(app) + ".json", data=form)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert fragment in response.json()["message"]


async def test_updates_cancel_redirect_and_unknown_call(app: Any) -> None:
    path = _calls_path(app)
    async with asgi_client(app) as http:
        created = await http.post(
            path + ".json", data={"To": "+14155550123", "From": "+1", "Twiml": TWIML}
        )
        sid = created.json()["sid"]
        canceled = (await http.post(f"{path}/{sid}.json", data={"Status": "canceled"})).json()
        again = (await http.post(f"{path}/{sid}.json", data={"Status": "completed"})).json()
        redirect = await http.post(f"{path}/{sid}.json", data={"Twiml": TWIML})
        bad_status = await http.post(f"{path}/{sid}.json", data={"Status": "ringing"})
        missing = await http.get(f"{path}/CA00000000000000000000000000000000.json")
        wrong_account = await http.get(
            "/api/2010-04-01/Accounts/AC00000000000000000000000000000000/Calls.json"
        )
    assert canceled["status"] == "canceled"
    assert again["status"] == "canceled"
    assert redirect.status_code == 400
    assert redirect.json()["code"] == 21220
    assert bad_status.status_code == 400
    assert missing.status_code == 404
    assert wrong_account.status_code == 404


async def test_set_status_service_moves_a_call_and_publishes(app: Any) -> None:
    ctx = ctx_of(app)
    updates: list[dict[str, Any]] = []
    ctx.bus.subscribe("call.updated", updates.append)
    calls = ctx.products.calls
    assert calls is not None
    set_status, get_call = calls.set_status, calls.get
    async with asgi_client(app) as http:
        created = await http.post(
            _calls_path(app) + ".json", data={"To": "+1", "From": "+1", "Twiml": TWIML}
        )
    sid = created.json()["sid"]
    await set_status(sid, "in-progress", answered_by="human")
    await set_status(sid, "completed")
    call = get_call(sid)
    assert call["answered_by"] == "human"
    assert call["start_time"] is not None
    assert call["duration"] is not None
    assert [u["status"] for u in updates] == ["in-progress", "completed"]
    with pytest.raises(ValueError, match="status"):
        await set_status(sid, "exploded")


async def test_official_client_sees_injected_outage(app: Any) -> None:
    async with serve(app) as url:
        client = twilio_client(app, url)
        async with asgi_client(app) as http:
            await http.put("/sandbox/faults/api", json={"outage": True})
        with pytest.raises(TwilioRestException) as caught:
            await asyncio.to_thread(lambda: client.calls.create(to="+1", from_="+1", twiml=TWIML))
    assert caught.value.status == 503
