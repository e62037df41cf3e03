"""The phone's control API (``/sandbox/voice``) against a real agent, both served on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from _caller_support import HANDOFF_DATA, AgentState, agent_app, loopback_socket, serve

from tac.sandbox import SandboxSettings, create_app

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def agent_server() -> AsyncIterator[AgentState]:
    state = AgentState(auth_token="placeholder")
    async with serve(agent_app(state)) as url:
        state.base_url = url
        yield state


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(agent_server: AgentState) -> AsyncIterator[httpx.AsyncClient]:
    sock = loopback_socket()
    settings = SandboxSettings(
        db=":memory:", port=sock.getsockname()[1], app_url=agent_server.base_url
    )
    app = create_app(settings, products=["tac_sandbox.phone.control"])
    identity = app.state.sandbox.identity
    async with (
        serve(app, sock) as url,
        httpx.AsyncClient(
            base_url=url, auth=(identity.api_key, identity.api_secret), timeout=10
        ) as client,
    ):
        client.headers["X-Test-Auth-Token"] = identity.auth_token
        yield client


@pytest_asyncio.fixture(loop_scope="module")
async def agent(agent_server: AgentState, sandbox: httpx.AsyncClient) -> AgentState:
    agent_server.reset(sandbox.headers["X-Test-Auth-Token"])
    await sandbox.delete("/sandbox/voice/calls")
    return agent_server


async def _place(sandbox: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await sandbox.post("/sandbox/voice/calls", json=body)
    assert response.status_code == 201, response.text
    call: dict[str, Any] = response.json()
    return call


async def _next_replies(sandbox: httpx.AsyncClient, call_id: str, after: int) -> dict[str, Any]:
    response = await sandbox.get(
        f"/sandbox/voice/calls/{call_id}/replies", params={"after": after, "wait": 5}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_place_a_call_talk_and_hang_up(sandbox: httpx.AsyncClient, agent: AgentState) -> None:
    call = await _place(
        sandbox, **{"from": "+14155550199", "customParameters": {"profileId": "mem_profile_x"}}
    )
    call_id = call["id"]
    assert call_id.startswith("CA")
    assert call["status"] == "in-progress"
    assert call["from"] == "+14155550199"
    assert agent.frames[0]["customParameters"] == {"profileId": "mem_profile_x"}
    assert agent.twiml_requests[0]["signature_ok"]
    assert agent.ws_signature_ok == [True]

    said = await sandbox.post(f"/sandbox/voice/calls/{call_id}/say", json={"text": "hello there"})
    assert said.status_code == 200
    replies = await _next_replies(sandbox, call_id, 0)
    assert [r["text"] for r in replies["replies"]] == ["You said: hello there"]
    assert replies["cursor"] == 1
    assert replies["replies"][0]["tokens"][0] == "You "

    await sandbox.post(f"/sandbox/voice/calls/{call_id}/say", json={"text": "story"})
    interrupted = await sandbox.post(
        f"/sandbox/voice/calls/{call_id}/interrupt", json={"utterance": "Once", "durationMs": 120}
    )
    assert interrupted.json() == {
        "type": "interrupt",
        "utteranceUntilInterrupt": "Once",
        "durationUntilInterruptMs": 120,
    }
    second = await _next_replies(sandbox, call_id, 1)
    assert second["replies"][0]["interrupted"] is True

    ended = await sandbox.post(f"/sandbox/voice/calls/{call_id}/hangup")
    assert ended.json()["status"] == "completed"
    assert ended.json()["endReason"] == "hangup"
    assert agent.callbacks[0]["fields"]["CallStatus"] == "completed"
    assert agent.callbacks[0]["signature_ok"]

    transcript = (await sandbox.get(f"/sandbox/voice/calls/{call_id}/transcript")).json()
    speakers = [(line["speaker"], line["kind"]) for line in transcript["transcript"]]
    assert speakers[:2] == [("caller", "prompt"), ("agent", "reply")]
    assert "caller: hello there" in transcript["text"]
    events = (await sandbox.get(f"/sandbox/voice/calls/{call_id}/events")).json()["events"]
    assert [e["type"] for e in events if e["kind"] == "sent"][:2] == ["setup", "prompt"]
    listed = (await sandbox.get("/sandbox/voice/calls")).json()
    assert [c["id"] for c in listed["calls"]] == [call_id]


async def test_handoff_is_visible_through_the_control_api(
    sandbox: httpx.AsyncClient, agent: AgentState
) -> None:
    call_id = (await _place(sandbox))["id"]
    await sandbox.post(f"/sandbox/voice/calls/{call_id}/say", json={"text": "handoff"})
    done = await sandbox.get(f"/sandbox/voice/calls/{call_id}", params={"wait_ended": 5})
    body = done.json()
    assert body["endReason"] == "handoff"
    assert body["handoffData"] == HANDOFF_DATA
    assert body["actionCallbacks"][0]["fields"]["HandoffData"] == HANDOFF_DATA
    replies = await _next_replies(sandbox, call_id, 1)
    assert replies == {"replies": [], "cursor": 1, "ended": True, "partialReply": ""}


async def test_dtmf_and_partials_follow_the_twiml(
    sandbox: httpx.AsyncClient, agent: AgentState
) -> None:
    call_id = (await _place(sandbox))["id"]
    refused = await sandbox.post(f"/sandbox/voice/calls/{call_id}/press", json={"digits": "1"})
    assert refused.status_code == 409
    assert "dtmfDetection" in refused.json()["message"]
    partial = await sandbox.post(
        f"/sandbox/voice/calls/{call_id}/say", json={"text": "hi", "partials": ["h"]}
    )
    assert partial.status_code == 409

    agent.twiml = lambda s: s.default_twiml(dtmfDetection="true", partialPrompts="true")
    call_id = (await _place(sandbox))["id"]
    pressed = await sandbox.post(f"/sandbox/voice/calls/{call_id}/press", json={"digits": "42"})
    assert pressed.status_code == 200
    replies = await _next_replies(sandbox, call_id, 0)
    if len(replies["replies"]) < 2:
        replies["replies"] += (await _next_replies(sandbox, call_id, 1))["replies"]
    assert [r["text"] for r in replies["replies"]] == ["You pressed 4", "You pressed 2"]
    await sandbox.post(
        f"/sandbox/voice/calls/{call_id}/say", json={"text": "a b", "partials": True}
    )
    await _next_replies(sandbox, call_id, 2)
    prompts = [(p["voicePrompt"], p["last"]) for p in agent.received("prompt")]
    assert prompts == [("a", False), ("a b", True)]


async def test_client_mistakes_get_clear_4xx(sandbox: httpx.AsyncClient, agent: AgentState) -> None:
    missing = await sandbox.post("/sandbox/voice/calls/CA0000/say", json={"text": "hi"})
    assert missing.status_code == 404
    assert missing.json()["code"] == 20404
    bad = await sandbox.post("/sandbox/voice/calls", json={"form": "+1"})
    assert bad.status_code == 400
    assert "form" in bad.json()["message"]
    call_id = (await _place(sandbox))["id"]
    empty = await sandbox.post(f"/sandbox/voice/calls/{call_id}/say", json={"text": ""})
    assert empty.status_code == 400
    digits = await sandbox.post(f"/sandbox/voice/calls/{call_id}/press", json={"digits": "x"})
    assert digits.status_code in (400, 409)
    await sandbox.post(f"/sandbox/voice/calls/{call_id}/hangup")
    late = await sandbox.post(f"/sandbox/voice/calls/{call_id}/say", json={"text": "hello?"})
    assert late.status_code == 409
    assert "completed" in late.json()["message"]
    negative = await sandbox.get(f"/sandbox/voice/calls/{call_id}/replies", params={"after": -1})
    assert negative.status_code == 400


async def test_an_app_that_fails_the_call_gives_502_with_the_reason(
    sandbox: httpx.AsyncClient, agent: AgentState
) -> None:
    agent.twiml = lambda _: "<Response><Hangup/></Response>"
    response = await sandbox.post("/sandbox/voice/calls", json={})
    assert response.status_code == 502
    assert "<Hangup> comes before <Connect>" in response.json()["message"]
    listed = (await sandbox.get("/sandbox/voice/calls")).json()["calls"]
    assert listed[0]["status"] == "failed"


async def test_list_long_polls_for_new_calls(sandbox: httpx.AsyncClient, agent: AgentState) -> None:
    empty = await sandbox.get("/sandbox/voice/calls", params={"after": 0, "wait": 0.05})
    assert empty.json() == {"calls": [], "cursor": 0}
    await _place(sandbox)
    found = await sandbox.get("/sandbox/voice/calls", params={"after": 0, "direction": "inbound"})
    assert found.json()["cursor"] == 1
    none = await sandbox.get("/sandbox/voice/calls", params={"direction": "outbound-api"})
    assert none.json()["calls"] == []
