"""Outbound calls (Calls API) answered by the sandbox's phone, and the Studio voice handoff."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from _caller_support import HANDOFF_DATA, AgentState, agent_app, loopback_socket, serve

from tac.sandbox import SandboxSettings, create_app
from tac_sandbox._settings import SandboxIdentity

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

PRODUCTS = [
    "tac_sandbox.products.calls",
    "tac_sandbox.products.studio",
    "tac_sandbox.phone.control",
]
CALLEE = "+14155550123"


class Sandbox:
    def __init__(self, client: httpx.AsyncClient, identity: SandboxIdentity) -> None:
        self.client = client
        self.identity = identity

    async def create_call(self, **fields: Any) -> dict[str, Any]:
        path = f"/api/2010-04-01/Accounts/{self.identity.account_sid}/Calls.json"
        body = {"To": CALLEE, "From": self.identity.phone_number, **fields}
        response = await self.client.post(path, data=body)
        assert response.status_code == 201, response.text
        call: dict[str, Any] = response.json()
        return call

    async def answered(self, after: int = 0) -> dict[str, Any]:
        response = await self.client.get(
            "/sandbox/voice/calls", params={"direction": "outbound-api", "after": after, "wait": 5}
        )
        calls: list[dict[str, Any]] = response.json()["calls"]
        assert calls, "the phone did not answer"
        return calls[0]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent_server() -> AsyncIterator[AgentState]:
    state = AgentState(auth_token="placeholder")
    async with serve(agent_app(state)) as url:
        state.base_url = url
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox_server(agent_server: AgentState) -> AsyncIterator[Sandbox]:
    sock = loopback_socket()
    port = sock.getsockname()[1]
    settings = SandboxSettings(db=":memory:", port=port, app_url=agent_server.base_url)
    app = create_app(settings, products=PRODUCTS)
    identity = app.state.sandbox.identity
    async with serve(app, sock) as url:
        auth = (identity.api_key, identity.api_secret)
        async with httpx.AsyncClient(base_url=url, auth=auth, timeout=10) as client:
            yield Sandbox(client, identity)


@pytest_asyncio.fixture(loop_scope="module")
async def sandbox(sandbox_server: Sandbox, agent_server: AgentState) -> Sandbox:
    agent_server.reset(sandbox_server.identity.auth_token)
    await sandbox_server.client.delete("/sandbox/voice/calls")
    return sandbox_server


def _events(agent: AgentState, kind: str) -> list[dict[str, Any]]:
    return [e for e in agent.call_events if e["kind"] == kind]


async def test_an_outbound_call_is_answered_and_reports_progress(
    sandbox: Sandbox, agent_server: AgentState
) -> None:
    agent = agent_server
    events = agent.base_url + "/call-events"
    call = await sandbox.create_call(
        Twiml=agent.default_twiml(welcomeGreeting="Hi, this is your pharmacy"),
        StatusCallback=f"{events}/status",
        StatusCallbackEvent=["initiated", "ringing", "answered", "completed"],
        MachineDetection="Enable",
        AsyncAmd="true",
        AsyncAmdStatusCallback=f"{events}/amd",
        Record="true",
        RecordingStatusCallback=f"{events}/recording",
    )
    answered = await sandbox.answered()
    assert answered["id"] == call["sid"]
    assert answered["direction"] == "outbound-api"
    assert answered["status"] == "in-progress"
    setup = agent.frames[0]
    assert setup["direction"] == "outbound"
    assert setup["callStatus"] == "IN-PROGRESS"
    assert (setup["from"], setup["to"]) == (sandbox.identity.phone_number, CALLEE)
    assert setup["callSid"] == call["sid"]

    path = f"/sandbox/voice/calls/{call['sid']}"
    await sandbox.client.post(f"{path}/say", json={"text": "who is this"})
    replies = await sandbox.client.get(f"{path}/replies", params={"wait": 5})
    assert replies.json()["replies"][0]["text"] == "You said: who is this"
    fetched = await sandbox.client.get(
        f"/api/2010-04-01/Accounts/{sandbox.identity.account_sid}/Calls/{call['sid']}.json"
    )
    assert fetched.json()["status"] == "in-progress"

    # the app ends the call through the Calls API: the socket closes, no action callback
    ended = await sandbox.client.post(
        f"/api/2010-04-01/Accounts/{sandbox.identity.account_sid}/Calls/{call['sid']}.json",
        data={"Status": "completed"},
    )
    assert ended.json()["status"] == "completed"
    details = (await sandbox.client.get(path, params={"wait_ended": 5})).json()
    assert details["endReason"] == "api-ended"
    assert agent.callbacks == []

    statuses = [e["fields"]["CallStatus"] for e in _events(agent, "status")]
    assert statuses == ["queued", "ringing", "in-progress", "completed"]
    assert all(e["signature_ok"] for e in agent.call_events)
    completed = _events(agent, "status")[-1]["fields"]
    assert completed["Direction"] == "outbound-api"
    assert completed["CallDuration"].isdigit()
    assert completed["Timestamp"].endswith(" +0000")
    assert [e["fields"]["SequenceNumber"] for e in _events(agent, "status")] == ["0", "1", "2", "3"]
    amd = _events(agent, "amd")[0]["fields"]
    assert amd["AnsweredBy"] == "human"
    assert amd["CallSid"] == call["sid"]
    recording = _events(agent, "recording")[0]["fields"]
    assert recording["RecordingStatus"] == "completed"
    assert recording["RecordingSid"].startswith("RE")


async def test_an_outbound_call_with_a_url_fetches_its_twiml(
    sandbox: Sandbox, agent_server: AgentState
) -> None:
    agent = agent_server
    call = await sandbox.create_call(
        Url=f"{agent.base_url}/twiml",
        StatusCallback=f"{agent.base_url}/call-events/status",
    )
    answered = await sandbox.answered()
    assert answered["id"] == call["sid"]
    request = agent.twiml_requests[0]
    assert request["signature_ok"]
    assert request["fields"]["Direction"] == "outbound-api"
    assert request["fields"]["To"] == CALLEE
    # the callee hangs up: the action callback, then the Calls resource completes
    await sandbox.client.post(f"/sandbox/voice/calls/{call['sid']}/hangup")
    assert agent.callbacks[0]["fields"]["CallStatus"] == "completed"
    assert agent.callbacks[0]["fields"]["Direction"] == "outbound-api"
    fetched = await sandbox.client.get(
        f"/api/2010-04-01/Accounts/{sandbox.identity.account_sid}/Calls/{call['sid']}.json"
    )
    assert fetched.json()["status"] == "completed"
    # only the default "completed" status callback
    assert [e["fields"]["CallStatus"] for e in _events(agent, "status")] == ["completed"]


async def test_calls_without_conversation_relay_are_not_answered(
    sandbox: Sandbox, agent_server: AgentState
) -> None:
    await sandbox.create_call(Twiml="<Response><Say>Your code is 1234</Say></Response>")
    listed = await sandbox.client.get("/sandbox/voice/calls", params={"wait": 0.05})
    assert listed.json()["calls"] == []


async def test_voice_handoff_to_studio_reaches_the_sandbox(
    sandbox: Sandbox, agent_server: AgentState
) -> None:
    identity = sandbox.identity
    action = (
        f"https://webhooks.twilio.com/v1/Accounts/{identity.account_sid}/Flows/"
        f"{identity.studio_flow_sid}?Trigger=incomingCall"
    )
    agent_server.twiml = lambda s: s.default_twiml().replace(
        f'action="{s.base_url}/conversation-relay-callback"', f'action="{action}"'
    )
    placed = await sandbox.client.post("/sandbox/voice/calls", json={})
    call_id = placed.json()["id"]
    await sandbox.client.post(f"/sandbox/voice/calls/{call_id}/say", json={"text": "handoff"})
    details = (
        await sandbox.client.get(f"/sandbox/voice/calls/{call_id}", params={"wait_ended": 5})
    ).json()
    callback = details["actionCallbacks"][0]
    assert callback["status"] == 200
    assert "/webhooks/v1/Accounts/" in callback["url"]
    handoffs = (await sandbox.client.get("/sandbox/studio/handoffs")).json()["handoffs"]
    assert handoffs[-1]["callSid"] == call_id
    assert handoffs[-1]["params"]["HandoffData"] == HANDOFF_DATA
    transcript = (await sandbox.client.get(f"/sandbox/voice/calls/{call_id}/transcript")).json()
    assert transcript["transcript"][-1]["kind"] == "say"
