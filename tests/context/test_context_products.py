"""ConversationClient writes, KnowledgeClient, StudioClient and CallsClient (MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tac.context import (
    CallsClient,
    ConflictError,
    ConversationClient,
    KnowledgeClient,
    StudioClient,
    TwilioHTTP,
    TwilioTransportError,
)
from tac.models.conversation import (
    CommunicationContent,
    CommunicationParticipant,
    CommunicationRequest,
    ConversationRequest,
    ParticipantAddress,
    ParticipantRequest,
)

pytestmark = pytest.mark.unit

MakeHTTP = Callable[..., tuple[TwilioHTTP, Any]]
DATA = Path(__file__).parent / "data"
CONV = "conv_conversation_0ap7mmmd7f0vf68q9wsz9z3h6d"
CONFIG = "conv_configuration_11xdgxvf5tyw1swz67d269h6m0"
AC = "AC00000000000000000000000000000000"


def data(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def form(request: httpx.Request) -> dict[str, list[str]]:
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    return parse_qs(request.content.decode(), keep_blank_values=True)


def new_conversation() -> ConversationRequest:
    return ConversationRequest(
        configuration_id=CONFIG,
        participants=[
            ParticipantRequest(
                type="CUSTOMER",
                addresses=[ParticipantAddress(channel="SMS", address="+14155550123")],
            )
        ],
    )


# Conversations -------------------------------------------------------------------------------


async def test_get_configuration_is_async_and_parses(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        lambda r: httpx.Response(200, json=data("orchestrator-configuration-response.json"))
    )
    client = ConversationClient(configuration_id=CONFIG, http=http)
    config = await client.get_configuration()
    assert config.memory_store_id == "mem_store_11cnpejzxv90ee1fyqzenrjvbh"
    assert rec.requests[0].url.path == f"/v2/ControlPlane/Configurations/{CONFIG}"
    other = await client.get_configuration("conv_configuration_other")
    assert other.id == CONFIG
    assert rec.requests[1].url.path.endswith("/conv_configuration_other")


async def test_get_configuration_needs_an_id(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json={}))
    with pytest.raises(ValueError, match="configuration_id"):
        await ConversationClient(http=http).get_configuration()


async def test_create_conversation_with_idempotency_key_retries(make_http: MakeHTTP) -> None:
    answers = [httpx.ReadTimeout("t"), httpx.Response(201, json={"id": CONV})]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    http, rec = make_http(handler)
    created = await ConversationClient(http=http).create_conversation(
        new_conversation(), idempotency_key="key-1"
    )
    assert created.id == CONV
    assert [r.headers["Idempotency-Key"] for r in rec.requests] == ["key-1", "key-1"]
    assert rec.body() == {
        "configurationId": CONFIG,
        "participants": [
            {"addresses": [{"channel": "SMS", "address": "+14155550123"}], "type": "CUSTOMER"}
        ],
    }


async def test_create_conversation_without_key_is_not_retried_when_ambiguous(
    make_http: MakeHTTP,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("t")

    http, rec = make_http(handler)
    with pytest.raises(TwilioTransportError):
        await ConversationClient(http=http).create_conversation(new_conversation())
    assert len(rec.requests) == 1
    assert "Idempotency-Key" not in rec.requests[0].headers


async def test_create_or_reuse_creates(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(201, json={"id": CONV}))
    assert await ConversationClient(http=http).create_or_reuse_conversation(new_conversation()) == (
        CONV,
        False,
    )


async def test_create_or_reuse_reuses_on_conflict(make_http: MakeHTTP) -> None:
    http, _ = make_http(
        lambda r: httpx.Response(
            409,
            json=data("orchestrator-error-409-conflict.json"),
            headers={"X-Conflicting-Resource-Id": "conv_conversation_existing"},
        )
    )
    result = await ConversationClient(http=http).create_or_reuse_conversation(new_conversation())
    assert result == ("conv_conversation_existing", True)


async def test_create_or_reuse_raises_conflict_without_header(make_http: MakeHTTP) -> None:
    http, _ = make_http(
        lambda r: httpx.Response(409, json=data("orchestrator-error-409-conflict.json"))
    )
    with pytest.raises(ConflictError) as info:
        await ConversationClient(http=http).create_or_reuse_conversation(new_conversation())
    assert info.value.code == 20409


async def test_update_patch_and_clear_callbacks(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(200, json={"id": CONV, "status": "INACTIVE"}))
    client = ConversationClient(http=http)
    updated = await client.update_conversation(CONV, "INACTIVE", name="handoff")
    assert updated.status == "INACTIVE"
    await client.patch_conversation(CONV, {"metadata": {"k": "v"}})
    await client.clear_status_callbacks(CONV)
    methods = [(r.method, r.url.path) for r in rec.requests]
    assert (
        methods
        == [("PUT", f"/v2/Conversations/{CONV}")] + [("PATCH", f"/v2/Conversations/{CONV}")] * 2
    )
    bodies = [json.loads(r.content) for r in rec.requests]
    assert bodies == [
        {"status": "INACTIVE", "name": "handoff"},
        {"metadata": {"k": "v"}},
        {"configuration": {"statusCallbacks": []}},
    ]


async def test_update_conversation_rejects_bad_status(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(200, json={"id": CONV}))
    with pytest.raises(ValueError, match="status"):
        await ConversationClient(http=http).update_conversation(CONV, "DONE")  # type: ignore[arg-type]
    assert rec.requests == []


async def test_participants_add_and_replace(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(201, json={"id": "conv_participant_1"}))
    client = ConversationClient(http=http)
    request = ParticipantRequest(
        type="AI_AGENT", addresses=[ParticipantAddress(channel="SMS", address="+18005550100")]
    )
    added = await client.add_participant(CONV, request)
    assert added.id == "conv_participant_1"
    await client.update_participant(CONV, "conv_participant_1", request)
    assert [(r.method, r.url.path) for r in rec.requests] == [
        ("POST", f"/v2/Conversations/{CONV}/Participants"),
        ("PUT", f"/v2/Conversations/{CONV}/Participants/conv_participant_1"),
    ]
    assert rec.body() == {
        "addresses": [{"channel": "SMS", "address": "+18005550100"}],
        "type": "AI_AGENT",
    }


async def test_create_communication(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        lambda r: httpx.Response(
            201,
            json={"id": "conv_communication_1", "author": {"address": "+1", "channel": "SMS"}},
        )
    )
    request = CommunicationRequest(
        author=CommunicationParticipant(address="+1", channel="SMS"),
        content=CommunicationContent(text="hi"),
        recipients=[CommunicationParticipant(address="+2", channel="SMS")],
        resource_id="SM1",
    )
    created = await ConversationClient(http=http).create_communication(CONV, request)
    assert created.id == "conv_communication_1"
    assert rec.body()["resourceId"] == "SM1"
    assert rec.body()["content"] == {"type": "TEXT", "text": "hi"}


# Knowledge -----------------------------------------------------------------------------------


async def test_knowledge_get_and_search(make_http: MakeHTTP) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=data("knowledge-base-response.json"))
        return httpx.Response(200, json=data("knowledge-search-response.json"))

    http, rec = make_http(handler, region="ie1")
    client = KnowledgeClient(http=http)
    base = await client.get_knowledge_base("know_knowledgebase_1")
    assert (base.display_name, base.status) == ("store-help-center", "ACTIVE")
    chunks = await client.search_knowledge_base(
        "know_knowledgebase_1", "shipping time", top_k=2, knowledge_ids=["know_knowledge_a"]
    )
    assert [c.score for c in chunks] == [0.87, 0.71]
    assert chunks[0].document_title == "Shipping Policy - Example Store"
    assert str(rec.requests[0].url) == (
        "https://knowledge.ie1.twilio.com/v2/ControlPlane/KnowledgeBases/know_knowledgebase_1"
    )
    assert rec.requests[1].url.path == "/v2/KnowledgeBases/know_knowledgebase_1/Search"
    assert rec.body() == {
        "query": "shipping time",
        "top": 2,
        "knowledgeIds": ["know_knowledge_a"],
    }


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": "x" * 2049}, "query"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 21}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"knowledge_ids": [f"k{i}" for i in range(101)]}, "knowledge_ids"),
    ],
)
async def test_knowledge_search_validates_input(
    make_http: MakeHTTP, kwargs: dict[str, Any], field: str
) -> None:
    http, rec = make_http(lambda r: httpx.Response(200, json={"chunks": []}))
    arguments: dict[str, Any] = {"query": "ok", **kwargs}
    with pytest.raises(ValueError, match=field):
        await KnowledgeClient(http=http).search_knowledge_base("know_knowledgebase_1", **arguments)
    assert rec.requests == []


async def test_knowledge_search_accepts_limits(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(200, json={"chunks": None}))
    client = KnowledgeClient(http=http)
    assert await client.search_knowledge_base("kb", "x" * 2048, top_k=20) == []
    assert rec.body()["top"] == 20


# Studio --------------------------------------------------------------------------------------


async def test_studio_execution_is_form_encoded(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        lambda r: httpx.Response(201, json=data("studio-execution-response.json"))
    )
    handoff = {"HandoffData": {"conversationId": CONV, "attributes": {"reason": "human"}}}
    execution = await StudioClient(http=http).create_execution(
        "FW8e0fcd6b1f6cf7103b4569cfc1593f53",
        to="+14155550123",
        from_="+18005550100",
        parameters=handoff,
    )
    assert execution.sid == "FN86c1a522daaf39cfe155e1aba9df7035"
    assert execution.status == "active"
    assert execution.date_created == datetime(2026, 1, 6, 18, 36, tzinfo=timezone.utc)
    request = rec.requests[0]
    assert str(request.url) == (
        "https://studio.twilio.com/v2/Flows/FW8e0fcd6b1f6cf7103b4569cfc1593f53/Executions"
    )
    fields = form(request)
    assert fields["To"] == ["+14155550123"]
    assert fields["From"] == ["+18005550100"]
    assert json.loads(fields["Parameters"][0]) == handoff


async def test_studio_execution_not_retried_after_ambiguous_failure(make_http: MakeHTTP) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("dropped")

    http, rec = make_http(handler)
    with pytest.raises(TwilioTransportError):
        await StudioClient(http=http).create_execution("FW1", to="+1", from_="+2", parameters={})
    assert len(rec.requests) == 1


async def test_studio_execution_validates_input(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(201, json={"sid": "FN1"}))
    studio = StudioClient(http=http)
    with pytest.raises(ValueError, match="to"):
        await studio.create_execution("FW1", to="", from_="+2", parameters={})
    with pytest.raises(ValueError, match="parameters"):
        await studio.create_execution("FW1", to="+1", from_="+2", parameters={"x": object()})


@pytest.mark.parametrize(
    ("kwargs", "host"),
    [
        ({}, "https://webhooks.twilio.com"),
        ({"region": "au1"}, "https://webhooks.au1.twilio.com"),
        ({"api_base_url": "http://127.0.0.1:8000"}, "http://127.0.0.1:8000/webhooks"),
    ],
)
def test_voice_handoff_url_honours_region_and_base(kwargs: dict[str, str], host: str) -> None:
    http = TwilioHTTP(api_key="SK1", api_secret="x", **kwargs)  # type: ignore[arg-type]
    url = StudioClient(http=http).voice_handoff_url(AC, "FW1")
    assert url == f"{host}/v1/Accounts/{AC}/Flows/FW1?Trigger=incomingCall"


# Calls ---------------------------------------------------------------------------------------


async def test_create_call_form_encoding(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(201, json=data("voice-call-resource.json")))
    calls = CallsClient(http=http)
    call = await calls.create_call(
        "+14155550123",
        "+18005550100",
        twiml="<Response><Say>Hi</Say></Response>",
        status_callback="https://agent.example.com/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        machine_detection="Enable",
        async_amd=True,
        record=False,
        timeout=30,
        RecordingStatusCallback="https://agent.example.com/recording",
        send_digits=None,
    )
    assert call.sid == "CA564d49f5cd87626cbb46454d69d652d4"
    assert call.from_ == "+18005550100"
    assert call.status == "queued"
    assert call.date_created == datetime(2026, 1, 6, 18, 30, tzinfo=timezone.utc)
    request = rec.requests[0]
    assert request.url.path == f"/2010-04-01/Accounts/{AC}/Calls.json"
    assert request.url.host == "api.twilio.com"
    assert form(request) == {
        "To": ["+14155550123"],
        "From": ["+18005550100"],
        "Twiml": ["<Response><Say>Hi</Say></Response>"],
        "StatusCallback": ["https://agent.example.com/status"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "MachineDetection": ["Enable"],
        "AsyncAmd": ["true"],
        "Record": ["false"],
        "Timeout": ["30"],
        "RecordingStatusCallback": ["https://agent.example.com/recording"],
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"twiml": "<Response/>", "url": "https://x"},
        {"url": "https://x", "application_sid": "AP1"},
        {"twiml": "x" * 4001},
        {"url": "https://x", "To": "+3"},
    ],
)
async def test_create_call_validates_input(make_http: MakeHTTP, kwargs: dict[str, Any]) -> None:
    http, rec = make_http(lambda r: httpx.Response(201, json={"sid": "CA1"}))
    with pytest.raises(ValueError):
        await CallsClient(http=http).create_call("+1", "+2", **kwargs)
    assert rec.requests == []


async def test_create_call_not_retried_after_ambiguous_failure(make_http: MakeHTTP) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read")

    http, rec = make_http(handler)
    with pytest.raises(TwilioTransportError) as info:
        await CallsClient(http=http).create_call("+1", "+2", url="https://x/twiml")
    assert info.value.request_sent
    assert len(rec.requests) == 1


async def test_end_and_update_call(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        lambda r: httpx.Response(200, json={"sid": "CA1", "status": "completed", "duration": 12})
    )
    calls = CallsClient(http=http, account_sid="AC1")
    ended = await calls.end_call("CA1")
    assert (ended.status, ended.duration) == ("completed", "12")
    await calls.update_call("CA1", twiml="<Response><Hangup/></Response>")
    assert [r.url.path for r in rec.requests] == ["/2010-04-01/Accounts/AC1/Calls/CA1.json"] * 2
    assert form(rec.requests[0]) == {"Status": ["completed"]}
    assert form(rec.requests[1]) == {"Twiml": ["<Response><Hangup/></Response>"]}


async def test_calls_honour_region(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(200, json={"sid": "CA1"}), region="ie1")
    await CallsClient(http=http).end_call("CA1")
    assert rec.requests[0].url.host == "api.ie1.twilio.com"


async def test_calls_need_an_account_when_used() -> None:
    http = TwilioHTTP(api_key="SK1", api_secret="x")
    calls = CallsClient(http=http)
    with pytest.raises(ValueError, match="account_sid"):
        await calls.end_call("CA1")
    assert http.sender._session is None  # type: ignore[attr-defined]  (nothing opened)
