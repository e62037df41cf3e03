"""The Studio handoff tool: payload, per-channel delivery, release of the conversation, session end.

Twilio's side is a small fake ASGI app behind TAC's real clients; the end-to-end runs against
the sandbox are in test_handoff_sandbox.py and tests/seeds.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from agents import Agent, Runner, set_tracing_disabled
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tac import TAC, TACConfig
from tac.core.errors import TACConfigError
from tac.models.session import AuthorInfo, Channel, ConversationSession
from tac.testing import FakeModel
from tac.tools import create_studio_handoff_tool as exported_factory
from tac.tools.handoff import (
    DEFAULT_HANDOFF_TOOL_DESCRIPTION,
    DEFAULT_HANDOFF_TOOL_NAME,
    HandoffError,
    build_handoff_payload,
    create_studio_handoff_tool,
    post_studio_handoff,
    studio_executions_url,
    studio_voice_handoff_url,
)

pytestmark = pytest.mark.unit

ACCOUNT = "AC" + "0" * 32
FLOW = "FW" + "1" * 32
STORE = "mem_store_0aaaaaaaaaaaaaaaaaaaaaaaaa"
PROFILE = "mem_profile_0bbbbbbbbbbbbbbbbbbbbbbbbb"
CONV = "conv_conversation_0ccccccccccccccccccccccccc"
CUSTOMER = "+14155550123"
APP_NUMBER = "+15005550006"
ATTRIBUTES = {"department": "support", "priority": "normal"}


class FakeTwilio:
    """Orchestrator configuration and conversation updates, and Studio executions."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.studio_status = 201
        self.memory_store: str | None = STORE
        app = FastAPI()

        @app.get("/conversations/v2/ControlPlane/Configurations/{cid}")
        async def configuration(cid: str) -> dict[str, Any]:
            return {"id": cid, "memoryStoreId": self.memory_store, "description": "x"}

        @app.api_route("/conversations/v2/Conversations/{cid}", methods=["PUT", "PATCH"])
        async def conversation(cid: str, request: Request) -> dict[str, Any]:
            body = await request.json()
            self.calls.append((request.method, cid, body))
            return {"id": cid, "status": body.get("status", "ACTIVE"), "accountId": ACCOUNT}

        @app.post("/studio/v2/Flows/{flow}/Executions")
        async def execution(flow: str, request: Request) -> JSONResponse:
            form = parse_qs((await request.body()).decode())
            self.calls.append(("STUDIO", flow, {k: v[0] for k, v in form.items()}))
            if self.studio_status >= 400:
                return JSONResponse({"message": "flow unavailable", "code": 20001}, 500)
            return JSONResponse({"sid": "FN" + "2" * 32, "flow_sid": flow, "status": "active"}, 201)

        self.transport = httpx.ASGITransport(app=app)


def make_tac(twilio: FakeTwilio, **overrides: Any) -> TAC:
    values: dict[str, Any] = {
        "account_sid": ACCOUNT,
        "auth_token": "token",
        "api_key": "SK" + "1" * 32,
        "api_secret": "secret",
        "phone_number": APP_NUMBER,
        "conversation_configuration_id": "conv_configuration_x",
        "studio_handoff_flow_sid": FLOW,
        "api_base_url": "http://twilio.test",
    }
    values.update(overrides)
    return TAC(TACConfig(**values), transport=twilio.transport)


def make_session(channel: Channel = Channel.SMS, address: str = CUSTOMER) -> ConversationSession:
    return ConversationSession(
        conversation_id=CONV,
        channel=channel,
        profile_id=PROFILE,
        author_info=AuthorInfo(address=address, participant_id="conv_participant_c"),
    )


def expected_payload(reason: str) -> dict[str, Any]:
    return {
        "conversationId": CONV,
        "storeId": STORE,
        "profileId": PROFILE,
        "attributes": {**ATTRIBUTES, "reason": reason},
    }


async def test_sms_handoff_starts_studio_releases_the_conversation_and_ends_the_session() -> None:
    twilio = FakeTwilio()
    tac = make_tac(twilio)
    ended: list[str] = []
    tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
    session, _ = await tac.start_session(make_session())
    tool = create_studio_handoff_tool(tac, session, attributes=ATTRIBUTES)

    result = await tool(reason="customer asked")

    assert result == {"status": "handoff_initiated", "channel": "sms"}
    studio, patch, put = twilio.calls
    assert studio[:2] == ("STUDIO", FLOW)
    assert studio[2]["To"] == CUSTOMER
    assert studio[2]["From"] == APP_NUMBER
    assert json.loads(studio[2]["Parameters"]) == {
        "HandoffData": expected_payload("customer asked")
    }
    assert patch == ("PATCH", CONV, {"configuration": {"statusCallbacks": []}})
    assert put == ("PUT", CONV, {"status": "INACTIVE"})
    assert ended == [CONV]
    assert await tac.get_session(CONV) is None
    again = await tool(reason="twice")
    assert again == result
    assert len(twilio.calls) == 3
    await tac.aclose()


@pytest.mark.parametrize(
    ("channel", "address", "overrides", "agent", "sender"),
    [
        (
            Channel.WHATSAPP,
            "whatsapp:" + CUSTOMER,
            {"whatsapp_number": "+15005550007"},
            None,
            "whatsapp:+15005550007",
        ),
        (
            Channel.RCS,
            "rcs:" + CUSTOMER,
            {"rcs_sender_id": "rcs:acme_agent"},
            None,
            "rcs:acme_agent",
        ),
        (Channel.CHAT, "web-user-42", {}, "acme-agent", "acme-agent"),
        (Channel.CHAT, "web-user-42", {}, None, APP_NUMBER),
    ],
)
async def test_digital_handoff_uses_the_channels_sender(
    channel: Channel, address: str, overrides: dict[str, Any], agent: str | None, sender: str
) -> None:
    twilio = FakeTwilio()
    tac = make_tac(twilio, **overrides)
    session = make_session(channel, address)
    if agent:
        session.ai_agent_info = AuthorInfo(address=agent)
    result = await create_studio_handoff_tool(tac, session)(reason="needs a person")
    assert result == {"status": "handoff_initiated", "channel": channel.value}
    form = twilio.calls[0][2]
    assert (form["To"], form["From"]) == (address, sender)
    assert json.loads(form["Parameters"])["HandoffData"]["attributes"] == {
        "reason": "needs a person"
    }
    await tac.aclose()


async def test_voice_handoff_waits_for_the_call_to_send_end() -> None:
    twilio = FakeTwilio()
    tac = make_tac(twilio)
    ended: list[str] = []
    tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
    session, _ = await tac.start_session(make_session(Channel.VOICE))
    tool = create_studio_handoff_tool(tac, session, attributes=ATTRIBUTES)

    result = await tool(reason="caller wants a human")

    assert result == {"status": "handoff_initiated", "channel": "voice"}
    assert session.pending_handoff_data is not None
    assert json.loads(session.pending_handoff_data.handoff_data) == expected_payload(
        "caller wants a human"
    )
    stored = await tac.session_store.pop_pending_handoff(CONV)
    assert stored == session.pending_handoff_data.handoff_data
    assert [c[0] for c in twilio.calls] == ["PATCH", "PUT"]
    assert ended == []
    assert await tac.get_session(CONV) is not None
    await tac.aclose()


async def test_a_studio_failure_reaches_the_llm_and_on_error_and_changes_nothing() -> None:
    twilio = FakeTwilio()
    twilio.studio_status = 500
    tac = make_tac(twilio)
    errors: list[tuple[BaseException, dict[str, Any]]] = []
    tac.on_error(lambda exc, context: errors.append((exc, context)))
    session, _ = await tac.start_session(make_session())
    tool = create_studio_handoff_tool(tac, session)

    result = await tool(reason="customer asked")

    assert result["status"] == "handoff_failed"
    assert "Studio did not start the handoff flow" in result["reason"]
    assert [c[0] for c in twilio.calls] == ["STUDIO"]  # not retried, conversation untouched
    assert isinstance(errors[0][0], HandoffError)
    assert errors[0][1] == {"conversation_id": CONV, "channel": "sms", "tool": "handoff"}
    assert await tac.get_session(CONV) is not None
    await tac.aclose()


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("no_store", "memory store"),
        ("no_address", "customer's address is unknown"),
        ("no_whatsapp", "TWILIO_WHATSAPP_NUMBER"),
    ],
)
async def test_failures_say_why(setup: str, reason: str) -> None:
    twilio = FakeTwilio()
    tac = make_tac(twilio)
    session = make_session()
    if setup == "no_store":
        twilio.memory_store = None
    elif setup == "no_address":
        session.author_info = None
    else:
        session = make_session(Channel.WHATSAPP, "whatsapp:" + CUSTOMER)
    result = await create_studio_handoff_tool(tac, session)(reason="x")
    assert result["status"] == "handoff_failed"
    assert reason in result["reason"]
    assert twilio.calls == []
    await tac.aclose()


async def test_the_factory_refuses_what_cannot_work() -> None:
    twilio = FakeTwilio()
    session = make_session()
    no_flow = make_tac(twilio, studio_handoff_flow_sid=None)
    with pytest.raises(TACConfigError, match="TWILIO_STUDIO_HANDOFF_FLOW_SID"):
        create_studio_handoff_tool(no_flow, session)
    relay_only = make_tac(twilio, conversation_configuration_id=None)
    with pytest.raises(TACConfigError, match="TWILIO_CONVERSATION_CONFIGURATION_ID"):
        create_studio_handoff_tool(relay_only, session)
    tac = make_tac(twilio)
    with pytest.raises(TypeError, match="ConversationSession"):
        create_studio_handoff_tool(tac, {"conversation_id": CONV})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="JSON-serialisable"):
        create_studio_handoff_tool(tac, session, attributes={"when": object()})
    with pytest.raises(ValueError, match="invalid"):
        create_studio_handoff_tool(tac, session, name="hand off")
    for instance in (no_flow, relay_only, tac):
        await instance.aclose()


async def test_the_llm_sees_only_the_reason() -> None:
    tac = make_tac(FakeTwilio())
    tool = create_studio_handoff_tool(tac, make_session(), attributes=ATTRIBUTES)
    assert exported_factory is create_studio_handoff_tool
    assert tool.name == DEFAULT_HANDOFF_TOOL_NAME == "handoff"
    assert tool.description == DEFAULT_HANDOFF_TOOL_DESCRIPTION
    assert list(tool.params_json_schema["properties"]) == ["reason"]
    assert tool.params_json_schema["required"] == ["reason"]
    sdk_tool = tool.to_openai_agents_sdk_tool()
    assert sdk_tool.name == "handoff"
    named = create_studio_handoff_tool(tac, make_session(), name="escalate", description="Go.")
    assert (named.name, named.description) == ("escalate", "Go.")
    await tac.aclose()


async def test_an_agent_hands_off_through_the_agents_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    set_tracing_disabled(True)
    twilio = FakeTwilio()
    tac = make_tac(twilio)
    session, _ = await tac.start_session(make_session())
    tool = create_studio_handoff_tool(tac, session, attributes=ATTRIBUTES)
    model = FakeModel()
    model.when(contains="human").call_tool("handoff", {"reason": "customer asked"}).reply(
        "Transferring you now."
    )
    async with model.serve():
        monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        agent = Agent(name="a", instructions="help", tools=[tool.to_openai_agents_sdk_tool()])
        result = await Runner.run(agent, "I want to talk to a human")
    assert result.final_output == "Transferring you now."
    assert json.loads(model.requests[1].tool_outputs[0]) == {
        "status": "handoff_initiated",
        "channel": "sms",
    }
    assert twilio.calls[0][0] == "STUDIO"
    await tac.aclose()


def test_payload_and_urls() -> None:
    payload = build_handoff_payload(make_session(), STORE, {"reason": "r"})
    assert payload.to_wire() == {
        "conversationId": CONV,
        "storeId": STORE,
        "profileId": PROFILE,
        "attributes": {"reason": "r"},
    }
    anonymous = make_session()
    anonymous.profile_id = None
    assert build_handoff_payload(anonymous, STORE).profile_id == ""
    assert studio_executions_url(FLOW) == f"https://studio.twilio.com/v2/Flows/{FLOW}/Executions"
    assert studio_executions_url(FLOW, region="ie1").startswith("https://studio.ie1.twilio.com/")
    assert studio_voice_handoff_url(ACCOUNT, FLOW, api_base_url="http://127.0.0.1:8100") == (
        f"http://127.0.0.1:8100/webhooks/v1/Accounts/{ACCOUNT}/Flows/{FLOW}?Trigger=incomingCall"
    )


async def test_post_studio_handoff_posts_the_form() -> None:
    twilio = FakeTwilio()
    payload = build_handoff_payload(make_session(), STORE, {"reason": "r"})
    async with httpx.AsyncClient(transport=twilio.transport) as client:
        answer = await post_studio_handoff(
            payload,
            make_session(),
            handoff_url=f"http://twilio.test/studio/v2/Flows/{FLOW}/Executions",
            from_address=APP_NUMBER,
            api_key="SK1",
            api_secret="s",
            http_client=client,
        )
        assert answer["status"] == "active"
        twilio.studio_status = 500
        with pytest.raises(httpx.HTTPStatusError):
            await post_studio_handoff(
                payload,
                make_session(),
                handoff_url=f"http://twilio.test/studio/v2/Flows/{FLOW}/Executions",
                from_address=APP_NUMBER,
                api_key="SK1",
                api_secret="s",
                http_client=client,
            )
    assert twilio.calls[0][2]["From"] == APP_NUMBER
