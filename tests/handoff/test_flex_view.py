"""The sandbox's Flex view: each recorded handoff with customer, attributes, summary and traits."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tac.sandbox import SandboxSettings, create_app

pytestmark = pytest.mark.integration

PRODUCTS = [
    "tac_sandbox.products.memory",
    "tac_sandbox.products.studio",
    "tac_sandbox.products.flex",
]
CUSTOMER = "+14155550123"
CONV = "conv_conversation_0ap7mmmd7f0vf68q9wsz9z3h6d"


def make_app(products: list[str] = PRODUCTS) -> FastAPI:
    return create_app(SandboxSettings(db=":memory:"), products=products)


def client(app: FastAPI) -> httpx.AsyncClient:
    identity = app.state.sandbox.identity
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sandbox",
        auth=(identity.api_key, identity.api_secret),
    )


async def profile_with_summary(http: httpx.AsyncClient, store: str) -> str:
    created = await http.post(
        f"/memory/v1/Stores/{store}/Profiles",
        json={"traits": {"Contact": {"phone": CUSTOMER, "language": "spanish"}}},
    )
    profile: str = created.json()["id"]
    summaries = [
        ("An older summary.", "2026-01-06T19:30:00Z"),
        ("Customer asked for a human about a refund.", "2026-01-06T19:35:00Z"),
    ]
    for text, occurred in summaries:
        answer = await http.post(
            f"/memory/v1/Stores/{store}/Profiles/{profile}/ConversationSummaries",
            json={
                "summaries": [
                    {
                        "content": text,
                        "conversationId": CONV,
                        "occurredAt": occurred,
                        "source": "conversation-intelligence",
                    }
                ]
            },
        )
        assert answer.status_code == 202, answer.text
    return profile


def handoff_data(store: str, profile: str) -> dict[str, Any]:
    return {
        "conversationId": CONV,
        "storeId": store,
        "profileId": profile,
        "attributes": {"department": "support", "priority": "normal", "reason": "customer asked"},
    }


async def test_a_digital_handoff_shows_customer_attributes_summary_and_traits() -> None:
    app = make_app()
    store = app.state.sandbox.identity.memory_store_id
    flow = app.state.sandbox.identity.studio_flow_sid
    async with client(app) as http:
        profile = await profile_with_summary(http, store)
        started = await http.post(
            f"/studio/v2/Flows/{flow}/Executions",
            data={
                "To": CUSTOMER,
                "From": "+15005550006",
                "Parameters": json.dumps({"HandoffData": handoff_data(store, profile)}),
            },
        )
        assert started.status_code == 201
        tasks = (await http.get("/sandbox/flex/tasks")).json()["tasks"]
    assert len(tasks) == 1
    task = tasks[0]
    assert task["source"] == "studio_execution"
    assert task["sid"].startswith("WT")
    assert task["channel"] == "sms"
    assert task["conversationId"] == CONV
    assert task["customer"] == {
        "address": CUSTOMER,
        "profileId": profile,
        "traits": {"Contact": {"phone": CUSTOMER, "language": "spanish"}},
    }
    assert task["agentAddress"] == "+15005550006"
    assert task["attributes"]["department"] == "support"
    assert task["reason"] == "customer asked"
    assert task["summary"]["content"] == "Customer asked for a human about a refund."
    assert task["summary"]["source"] == "conversation-intelligence"
    assert task["history"] == []  # no Orchestrator product in this sandbox


async def test_a_voice_handoff_and_the_filter() -> None:
    app = make_app()
    identity = app.state.sandbox.identity
    store = identity.memory_store_id
    async with client(app) as http:
        profile = await profile_with_summary(http, store)
        answer = await http.post(
            f"/webhooks/v1/Accounts/{identity.account_sid}/Flows/{identity.studio_flow_sid}",
            params={"Trigger": "incomingCall"},
            data={
                "CallSid": "CA" + "1" * 32,
                "From": CUSTOMER,
                "To": "+15005550006",
                "Direction": "inbound",
                "HandoffData": json.dumps(handoff_data(store, profile)),
            },
        )
        assert answer.status_code == 200
        tasks = (await http.get("/sandbox/flex/tasks", params={"conversationId": CONV})).json()
        other = (await http.get("/sandbox/flex/tasks", params={"conversationId": "conv_x"})).json()
    (task,) = tasks["tasks"]
    assert task["source"] == "voice_handoff"
    assert task["channel"] == "voice"
    assert task["callSid"] == "CA" + "1" * 32
    assert task["customer"]["address"] == CUSTOMER
    assert task["customer"]["traits"]["Contact"]["language"] == "spanish"
    assert task["reason"] == "customer asked"
    assert task["summary"]["content"] == "Customer asked for a human about a refund."
    assert other == {"tasks": []}


async def test_without_studio_there_are_no_tasks() -> None:
    app = make_app(["tac_sandbox.products.flex"])
    async with client(app) as http:
        answer = await http.get("/sandbox/flex/tasks")
    assert answer.json() == {"tasks": []}
