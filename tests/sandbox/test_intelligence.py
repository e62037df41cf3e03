"""Conversation Intelligence in the sandbox: summaries into Memory, or the v3 webhook."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _products_support import INTELLIGENCE, MEMORY, asgi_client, ctx_of, make_app, serve
from fastapi import FastAPI, Request
from twilio.request_validator import RequestValidator

pytestmark = pytest.mark.integration

# Keys of twilio-specs/examples/intelligence-rule-execution-summary.json
ENVELOPE_KEYS = {
    "accountId",
    "conversationId",
    "memoryStoreId",
    "intelligenceConfiguration",
    "operatorResults",
}
RESULT_KEYS = {
    "id",
    "accountId",
    "outputFormat",
    "intelligenceConfiguration",
    "conversationId",
    "operator",
    "dateCreated",
    "referenceIds",
    "executionDetails",
    "metadata",
    "result",
}
DETAILS_KEYS = {"trigger", "communications", "channels", "participants", "resolvedContext"}
MESSAGES = [
    ("CUSTOMER", "Hi, where is my order #4521? I ordered it last week."),
    ("AI_AGENT", "Your order #4521 shipped Monday and arrives tomorrow."),
    ("CUSTOMER", "Great. I prefer text messages over email for delivery updates."),
    ("AI_AGENT", "Noted, we will text you delivery updates."),
]


def _status_event(profile_id: str | None, status: str = "CLOSED") -> dict[str, Any]:
    participants = [
        {"id": "conv_participant_c", "type": "CUSTOMER", "profileId": profile_id},
        {"id": "conv_participant_a", "type": "AI_AGENT"},
    ]
    communications = [
        {
            "id": f"conv_communication_{index}",
            "conversationId": "conv_conversation_ci",
            "author": {
                "address": "+14155550123" if kind == "CUSTOMER" else "+18005550100",
                "channel": "SMS",
                "participantId": "conv_participant_c"
                if kind == "CUSTOMER"
                else "conv_participant_a",
            },
            "content": {"type": "TEXT", "text": text},
        }
        for index, (kind, text) in enumerate(MESSAGES)
    ]
    return {
        "conversation": {"id": "conv_conversation_ci", "status": status},
        "previous_status": "ACTIVE",
        "status": status,
        "participants": participants,
        "communications": communications,
    }


async def _new_profile(http: Any, app: Any) -> tuple[str, str]:
    profiles = f"/memory/v1/Stores/{ctx_of(app).identity.memory_store_id}/Profiles"
    response = await http.post(profiles, json={"traits": {"Contact": {"phone": "+14155550123"}}})
    return profiles, response.json()["id"]


async def test_closing_a_conversation_puts_a_summary_in_recall() -> None:
    app = make_app([MEMORY, INTELLIGENCE])
    ctx = ctx_of(app)
    async with asgi_client(app) as http:
        profiles, profile = await _new_profile(http, app)
        await ctx.bus.publish("conversation.status_changed", _status_event(profile))
        recall = (
            await http.post(f"{profiles}/{profile}/Recall", json={"query": "order 4521 delivery"})
        ).json()
        listed = (await http.get(f"{profiles}/{profile}/Observations")).json()
        results = (await http.get("/intelligence/v3/OperatorResults")).json()
    assert len(recall["summaries"]) == 1
    summary = recall["summaries"][0]
    assert summary["source"] == "conversation-intelligence"
    assert summary["conversationId"] == "conv_conversation_ci"
    assert "#4521" in summary["content"]
    assert summary["score"] > 0
    assert [o["content"] for o in listed["observations"]] == [
        'Customer said: "I prefer text messages over email for delivery updates."'
    ]
    assert listed["observations"][0]["conversationIds"] == ["conv_conversation_ci"]
    assert results["meta"]["key"] == "operatorResults"
    assert results["operatorResults"][0]["executionDetails"]["trigger"]["on"] == "CONVERSATION_END"


async def test_inactive_then_closed_writes_one_summary_per_distinct_text() -> None:
    app = make_app([MEMORY, INTELLIGENCE])
    ctx = ctx_of(app)
    async with asgi_client(app) as http:
        profiles, profile = await _new_profile(http, app)
        await ctx.bus.publish("conversation.status_changed", _status_event(profile, "INACTIVE"))
        await ctx.bus.publish("conversation.status_changed", _status_event(profile, "CLOSED"))
        await ctx.bus.publish("conversation.status_changed", _status_event(None, "CLOSED"))
        summaries = (await http.get(f"{profiles}/{profile}/ConversationSummaries")).json()
        results = (await http.get("/sandbox/intelligence/results")).json()
    assert len(summaries["summaries"]) == 1
    triggers = [r["executionDetails"]["trigger"]["on"] for r in results["operatorResults"]]
    assert triggers == ["CONVERSATION_INACTIVE", "CONVERSATION_END", "CONVERSATION_END"]


async def test_a_rule_turned_off_writes_nothing() -> None:
    app = make_app([MEMORY, INTELLIGENCE])
    async with asgi_client(app) as http:
        profiles, profile = await _new_profile(http, app)
        put = await http.put("/sandbox/intelligence/rules/closed", json={"mode": "off"})
        await ctx_of(app).bus.publish("conversation.status_changed", _status_event(profile))
        summaries = (await http.get(f"{profiles}/{profile}/ConversationSummaries")).json()
    assert put.json()["mode"] == "off"
    assert summaries["summaries"] == []


async def test_webhook_mode_sends_the_signed_v3_payload_and_writes_nothing() -> None:
    received: list[tuple[str, bytes, str]] = []
    receiver = FastAPI()

    @receiver.post("/ci-webhook")
    async def ci_webhook(request: Request) -> dict[str, str]:
        received.append(
            (str(request.url), await request.body(), request.headers["x-twilio-signature"])
        )
        return {"status": "ok"}

    async with serve(receiver) as receiver_url:
        app = make_app([MEMORY, INTELLIGENCE], app_url=receiver_url)
        ctx = ctx_of(app)
        async with asgi_client(app) as http:
            profiles, profile = await _new_profile(http, app)
            rule = await http.put("/sandbox/intelligence/rules/closed", json={"mode": "webhook"})
            await ctx.bus.publish("conversation.status_changed", _status_event(profile))
            deliveries = (await http.get("/sandbox/intelligence/deliveries")).json()
            summaries = (await http.get(f"{profiles}/{profile}/ConversationSummaries")).json()
    assert rule.json()["url"] == f"{receiver_url}/ci-webhook"
    assert summaries["summaries"] == []
    assert [d["status"] for d in deliveries["deliveries"]] == [200]
    url, body, signature = received[0]
    assert "bodySHA256=" in url
    validator = RequestValidator(ctx.identity.auth_token)
    assert validator.validate(url, body.decode(), signature)
    payload = json.loads(body)
    assert set(payload) == ENVELOPE_KEYS
    result = payload["operatorResults"][0]
    assert set(result) == RESULT_KEYS
    assert set(result["executionDetails"]) == DETAILS_KEYS
    assert payload["memoryStoreId"] == ctx.identity.memory_store_id
    assert payload["intelligenceConfiguration"]["id"] == ctx.identity.intelligence_configuration_id
    assert result["outputFormat"] == "JSON"
    assert "#4521" in result["result"]["summaries"][0]["summary"]
    assert result["executionDetails"]["resolvedContext"]["memory"]["profileId"] == profile
    assert result["executionDetails"]["participants"][0] == {
        "id": "conv_participant_c",
        "profileId": profile,
        "type": "CUSTOMER",
    }


async def test_unreachable_webhook_is_recorded_not_raised() -> None:
    app = make_app([MEMORY, INTELLIGENCE])
    async with asgi_client(app) as http:
        _, profile = await _new_profile(http, app)
        await http.put(
            "/sandbox/intelligence/rules/inactive",
            json={"mode": "webhook", "url": "http://127.0.0.1:9/ci-webhook"},
        )
        await ctx_of(app).bus.publish(
            "conversation.status_changed", _status_event(profile, "INACTIVE")
        )
        deliveries = (await http.get("/sandbox/intelligence/deliveries")).json()
    assert deliveries["deliveries"][0]["status"] is None
    assert "Error" in deliveries["deliveries"][0]["error"]


@pytest.mark.parametrize(
    ("trigger", "body", "status"),
    [
        ("closed", {"mode": "webhook", "url": "ftp://example.com"}, 400),
        ("closed", {"mode": "memory", "url": "http://example.com/ci"}, 400),
        ("closed", {"mode": "both"}, 400),
        ("sometimes", {"mode": "memory"}, 404),
    ],
)
async def test_rule_settings_are_validated(trigger: str, body: Any, status: int) -> None:
    app = make_app([MEMORY, INTELLIGENCE])
    async with asgi_client(app) as http:
        response = await http.put(f"/sandbox/intelligence/rules/{trigger}", json=body)
        config = (await http.get("/sandbox/intelligence/configuration")).json()
    assert response.status_code == status
    assert {r["trigger"]: r["mode"] for r in config["rules"]} == {
        "inactive": "memory",
        "closed": "memory",
    }


async def test_other_configurations_and_unchanged_status_are_ignored() -> None:
    app = make_app([MEMORY, INTELLIGENCE])
    ctx = ctx_of(app)
    async with asgi_client(app) as http:
        profiles, profile = await _new_profile(http, app)
        foreign = _status_event(profile)
        foreign["conversation"]["configuration"] = {
            "intelligenceConfigurationIds": ["intelligence_configuration_other"]
        }
        same = _status_event(profile)
        same["previous_status"] = "CLOSED"
        active = _status_event(profile, "ACTIVE")
        for event in (foreign, same, active):
            await ctx.bus.publish("conversation.status_changed", event)
        summaries = (await http.get(f"{profiles}/{profile}/ConversationSummaries")).json()
    assert summaries["summaries"] == []


async def test_malformed_bus_payloads_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app([MEMORY, INTELLIGENCE])
    ctx = ctx_of(app)
    for payload in (
        {},
        {"status": "CLOSED"},
        {"status": "CLOSED", "conversation": {"id": 5}},
        {"status": "CLOSED", "conversation": "conv_conversation_1"},
        {"status": "CLOSED", "conversation": {"id": "c", "configuration": []}},
        {
            "status": "CLOSED",
            "conversation": {"id": "c"},
            "participants": [{"id": ["x"], "type": "CUSTOMER", "profileId": 7}],
            "communications": [
                {"author": {"participantId": ["x"], "channel": 3}, "content": {"text": "Hi."}}
            ],
        },
        {"status": "CLOSED", "conversation": {"id": "c"}, "participants": "x"},
        {"status": "CLOSED", "conversation": {"id": "c"}, "communications": [None, 3]},
    ):
        await ctx.bus.publish("conversation.status_changed", payload)
    for payload in (
        {},
        {"communication": "x"},
        {"communication": {"id": 1}},
        {"communication": {"id": "m", "conversationId": "c"}, "conversation": "c"},
        {"communication": {"id": "m", "conversationId": "c", "content": "x"}},
        {"participant": {"id": "p", "conversationId": "c"}},
        {"conversation": {"id": "c", "participants": ["x", {"id": 3}]}},
    ):
        for topic in ("communication.created", "participant.added", "conversation.created"):
            await ctx.bus.publish(topic, payload)
    async with asgi_client(app) as http:
        results = (await http.get("/sandbox/intelligence/results")).json()
    assert len(results["operatorResults"]) == 1  # the one with a text to summarise
    assert not [r for r in caplog.records if r.name == "tac_sandbox.events"]
