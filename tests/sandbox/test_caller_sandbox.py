"""The phone with the whole sandbox: Orchestrator mode, the runner's helpers, the fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from _caller_support import AgentState, agent_app, relay_twiml, serve

from tac.sandbox import Caller, CallFailed, Sandbox, SandboxError
from tac.testing.plugin import caller  # noqa: F401 - the fixture under test

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[AgentState]:
    state = AgentState(auth_token="unset")
    async with serve(agent_app(state)) as url:
        state.base_url = url
        yield state


@pytest_asyncio.fixture
async def sb(sandbox_factory: Any, agent: AgentState) -> Sandbox:
    started: Sandbox = await sandbox_factory(app_url=agent.base_url)
    agent.auth_token = started.identity.auth_token
    return started


def _orchestrated(sb: Sandbox, agent: AgentState) -> None:
    configuration = sb.identity.conversation_configuration_id
    agent.twiml = lambda s: s.default_twiml(conversationConfiguration=configuration)


async def _rest(sb: Sandbox, path: str, **params: Any) -> Any:
    auth = (sb.identity.api_key, sb.identity.api_secret)
    async with httpx.AsyncClient(base_url=sb.url, auth=auth) as http:
        response = await http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_orchestrator_mode_creates_the_calls_conversation(
    sb: Sandbox, agent: AgentState
) -> None:
    _orchestrated(sb, agent)
    async with sb.caller(from_="+14155550111") as phone:
        await phone.dial()
        found = await _rest(
            sb, "/conversations/v2/Conversations", channelId=phone.call_sid, status="ACTIVE"
        )
        (conversation,) = found["conversations"]
        assert conversation["id"] == phone.conversation["id"]
        assert conversation["configurationId"] == sb.identity.conversation_configuration_id
        participants = (
            await _rest(sb, f"/conversations/v2/Conversations/{conversation['id']}/Participants")
        )["participants"]
        by_type = {p["type"]: p for p in participants}
        assert by_type["CUSTOMER"]["addresses"] == [
            {"channel": "VOICE", "address": "+14155550111", "channelId": phone.call_sid}
        ]
        assert by_type["AI_AGENT"]["addresses"] == [
            {"channel": "VOICE", "address": sb.identity.phone_number}
        ]
        await phone.ask("my order")
        communications = (
            await _rest(sb, f"/conversations/v2/Conversations/{conversation['id']}/Communications")
        )["communications"]
    caller_said, agent_said = communications
    assert caller_said["content"]["type"] == "TRANSCRIPTION"
    assert caller_said["content"]["text"] == "my order"
    assert caller_said["content"]["transcription"]["channel"] == 0
    assert [w["text"] for w in caller_said["content"]["transcription"]["words"]] == ["my", "order"]
    assert caller_said["author"]["participantId"] == by_type["CUSTOMER"]["id"]
    assert caller_said["recipients"][0]["participantId"] == by_type["AI_AGENT"]["id"]
    assert caller_said["channelId"] == phone.call_sid
    assert agent_said["content"]["text"] == "You said: my order"
    assert agent_said["content"]["transcription"]["channel"] == 1
    assert agent_said["author"]["address"] == sb.identity.phone_number


async def test_a_second_call_reuses_the_conversation_and_is_found_by_its_sid(
    sb: Sandbox, agent: AgentState
) -> None:
    _orchestrated(sb, agent)
    async with sb.caller(from_="+14155550112") as first:
        await first.dial()
    async with sb.caller(from_="+14155550112") as second:
        await second.dial()
        found = await _rest(
            sb, "/conversations/v2/Conversations", channelId=second.call_sid, status="ACTIVE"
        )
    assert [c["id"] for c in found["conversations"]] == [first.conversation["id"]]
    assert second.conversation["id"] == first.conversation["id"]


async def test_orchestrator_mode_without_a_sandbox_fails_clearly(
    sb: Sandbox, agent: AgentState
) -> None:
    _orchestrated(sb, agent)
    phone = Caller(
        agent.base_url, account_sid=sb.identity.account_sid, auth_token=sb.identity.auth_token
    )
    with pytest.raises(CallFailed, match="no sandbox: pass sandbox_url="):
        await phone.dial()
    await phone.aclose()


async def test_sandbox_call_and_answered_call(sb: Sandbox, agent: AgentState) -> None:
    call = await sb.call(from_="+14155550113", custom_parameters={"k": "v"})
    assert call.details["setup"]["customParameters"] == {"k": "v"}
    reply = await call.ask("hi")
    assert str(reply) == "You said: hi"
    assert reply.tokens[0] == "You "
    frame = await call.interrupt("You said")
    assert frame["utteranceUntilInterrupt"] == "You said"
    assert "caller: hi" in await call.transcript()
    assert [e["type"] for e in await call.events() if e["kind"] == "sent"][:2] == [
        "setup",
        "prompt",
    ]
    final = await call.hang_up()
    assert final["status"] == "completed"
    with pytest.raises(SandboxError) as refused:
        await call.say("still there?")
    assert refused.value.status == 409

    twiml = relay_twiml(agent.ws_url, action=f"{agent.base_url}/conversation-relay-callback")
    path = f"/api/2010-04-01/Accounts/{sb.identity.account_sid}/Calls.json"
    auth = (sb.identity.api_key, sb.identity.api_secret)
    async with httpx.AsyncClient(base_url=sb.url, auth=auth) as http:
        response = await http.post(
            path, data={"To": "+14155550114", "From": sb.identity.phone_number, "Twiml": twiml}
        )
    assert response.status_code == 201
    answered = await sb.answered_call(timeout=5)
    assert answered.id == response.json()["sid"]
    assert str(await answered.ask("hello")) == "You said: hello"
    ended = await answered.hang_up()
    assert ended["direction"] == "outbound-api"
    with pytest.raises(TimeoutError):
        await sb.answered_call(timeout=0.05)


async def test_the_sandbox_plays_twilios_tls_edge_for_the_apps_public_domain(
    sb: Sandbox, agent: AgentState
) -> None:
    """TwiML naming wss://{public domain}/ws (as the reference SDK always writes it) reaches
    the plain-HTTP app; the signatures still cover the URLs as written."""
    public = agent.base_url.removeprefix("http://")
    configuration = sb.identity.conversation_configuration_id
    agent.twiml = lambda s: relay_twiml(
        f"wss://{public}/ws",
        action=f"https://{public}/conversation-relay-callback",
        conversationConfiguration=configuration,
    )
    async with sb.caller() as phone:
        await phone.dial()
        assert str(await phone.ask("hello")) == "You said: hello"
        await phone.hang_up()
    assert agent.ws_signature_ok == [True]
    assert [c["signature_ok"] for c in agent.callbacks] == [True]


async def test_a_failed_call_leaves_no_active_conversation_and_no_flex_task(
    sb: Sandbox, agent: AgentState
) -> None:
    identity = sb.identity
    studio = (
        f"https://webhooks.twilio.com/v1/Accounts/{identity.account_sid}"
        f"/Flows/{identity.studio_flow_sid}?Trigger=incomingCall"
    )
    agent.twiml = lambda s: relay_twiml(
        s.ws_url, action=studio, conversationConfiguration=identity.conversation_configuration_id
    )
    agent.close_after_accept = 1011
    async with sb.caller() as phone:
        with pytest.raises(CallFailed):
            await phone.dial()
        assert phone.conversation is not None
    found = await _rest(sb, "/conversations/v2/Conversations", channelId=phone.call_sid)
    assert [c["status"] for c in found["conversations"]] == ["CLOSED"]
    handoffs = await sb.client.request("GET", "/sandbox/studio/handoffs")
    assert [h["params"]["SessionStatus"] for h in handoffs["handoffs"]] == ["failed"]
    assert await sb.client.request("GET", "/sandbox/flex/tasks") == {"tasks": []}


async def test_a_failing_app_gives_a_sandbox_error_with_the_reason(
    sb: Sandbox, agent: AgentState
) -> None:
    agent.twiml_status = 500
    with pytest.raises(SandboxError, match="with 500: agent exploded"):
        await sb.call()


@pytest.fixture
def sandbox_settings(agent: AgentState) -> dict[str, Any]:
    return {"app_url": agent.base_url, "webhook_attempts": 1}


async def test_the_caller_fixture_calls_the_sandboxs_app(
    caller: Caller,  # noqa: F811
    sandbox: Sandbox,
    agent: AgentState,
) -> None:
    agent.auth_token = sandbox.identity.auth_token
    assert caller.app_url == agent.base_url
    await caller.dial()
    assert await caller.ask("fixture") == "You said: fixture"
    assert agent.twiml_requests[0]["signature_ok"]
