"""Conversation Orchestrator v2 over plain HTTP: validation, pagination, communications,
actions, identity resolution. Runs in-process through ``httpx.ASGITransport``."""

import sys
import types
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tac.sandbox import SandboxSettings, create_app
from tac_sandbox._context import SandboxContext

pytestmark = pytest.mark.integration

API = "/conversations/v2"


class Api:
    def __init__(self, http: httpx.AsyncClient, app: Any) -> None:
        self.http = http
        self.app = app
        self.identity = app.state.sandbox.identity

    async def conversation(self, **body: Any) -> dict[str, Any]:
        body.setdefault("configurationId", self.identity.conversation_configuration_id)
        response = await self.http.post(f"{API}/Conversations", json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    async def sms_pair(self, customer: str = "+14155550123") -> dict[str, Any]:
        return await self.conversation(
            participants=[
                {"type": "CUSTOMER", "addresses": [{"channel": "SMS", "address": customer}]},
                {"type": "AI_AGENT", "addresses": [{"channel": "SMS", "address": "+15005550006"}]},
            ]
        )


@pytest_asyncio.fixture
async def api() -> AsyncIterator[Api]:
    app = create_app(SandboxSettings(db=":memory:", app_url="http://127.0.0.1:9"))
    ident = app.state.sandbox.identity
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://sandbox",
            auth=(ident.api_key, ident.api_secret),
        ) as http,
    ):
        await http.put("/sandbox/webhooks/policy", json={"attempts": 1})
        yield Api(http, app)


def _assert_twilio_400(response: httpx.Response, *words: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == 20001
    assert body["status"] == 400
    for word in words:
        assert word in body["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, ["configurationId"]),
        ({"configurationId": "x", "participants": [{"addresses": []}]}, ["addresses"]),
        ({"configurationId": "x", "participants": [{"type": "BOSS"}]}, ["type"]),
        (
            {
                "configurationId": "x",
                "participants": [{"addresses": [{"channel": "FAX", "address": "1"}]}],
            },
            ["channel"],
        ),
        ({"configurationId": "x", "metadata": {str(i): "v" for i in range(9)}}, ["metadata"]),
        ({"configurationId": "x", "surprise": 1}, ["surprise"]),
    ],
)
async def test_bad_conversation_bodies_are_twilio_400s(
    api: Api, body: dict[str, Any], words: list[str]
) -> None:
    response = await api.http.post(f"{API}/Conversations", json=body)
    _assert_twilio_400(response, *words)


async def test_not_json_and_not_an_object_are_400(api: Api) -> None:
    broken = await api.http.post(
        f"{API}/Conversations", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    _assert_twilio_400(broken)
    listed = await api.http.post(f"{API}/Conversations", json=[1, 2])
    _assert_twilio_400(listed)


async def test_unknown_configuration_is_404(api: Api) -> None:
    response = await api.http.post(f"{API}/Conversations", json={"configurationId": "conv_x"})
    assert response.status_code == 404
    assert response.json()["code"] == 20404


async def test_status_rules(api: Api) -> None:
    conversation = await api.conversation()
    url = f"{API}/Conversations/{conversation['id']}"
    _assert_twilio_400(await api.http.put(url, json={}), "status")
    _assert_twilio_400(await api.http.put(url, json={"status": "DONE"}), "status")
    closed = await api.http.put(url, json={"status": "CLOSED"})
    assert closed.json()["status"] == "CLOSED"
    _assert_twilio_400(await api.http.put(url, json={"status": "ACTIVE"}), "CLOSED")


async def test_list_filters_and_pagination(api: Api) -> None:
    ids = [(await api.conversation(name=f"c{i}"))["id"] for i in range(3)]
    await api.http.put(f"{API}/Conversations/{ids[1]}", json={"status": "INACTIVE"})
    await api.http.put(f"{API}/Conversations/{ids[2]}", json={"status": "CLOSED"})

    async def listed(params: Any) -> list[str]:
        response = await api.http.get(f"{API}/Conversations", params=params)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["conversations"]]

    assert await listed({"status": "ACTIVE"}) == [ids[0]]
    assert await listed([("status", "ACTIVE"), ("status", "INACTIVE")]) == ids[:2]
    assert await listed({}) == ids
    _assert_twilio_400(
        await api.http.get(f"{API}/Conversations", params={"status": "DONE"}), "status"
    )

    first = (await api.http.get(f"{API}/Conversations", params={"pageSize": 2})).json()
    assert first["meta"]["key"] == "conversations"
    assert first["meta"]["pageSize"] == 2
    assert "previousToken" not in first["meta"]
    second = (
        await api.http.get(
            f"{API}/Conversations", params={"pageSize": 2, "pageToken": first["meta"]["nextToken"]}
        )
    ).json()
    assert [c["id"] for c in first["conversations"] + second["conversations"]] == ids
    assert "nextToken" not in second["meta"]
    assert "previousToken" in second["meta"]
    for bad in ({"pageSize": 0}, {"pageSize": "many"}, {"pageSize": 1001}):
        _assert_twilio_400(await api.http.get(f"{API}/Conversations", params=bad), "pageSize")
    _assert_twilio_400(
        await api.http.get(f"{API}/Conversations", params={"pageToken": "garbage!"}), "pageToken"
    )


async def test_communications_create_list_get_and_channel_id_filter(api: Api) -> None:
    conversation = await api.sms_pair()
    customer, agent = conversation["participants"]
    url = f"{API}/Conversations/{conversation['id']}/Communications"
    body = {
        "author": {"address": "+14155550123", "channel": "SMS"},
        "content": {"type": "TEXT", "text": "Hi"},
        "recipients": [{"address": "+15005550006", "channel": "SMS"}],
        "channelId": "SMaddcf8d1dc091509bce418870d278b90",
        "resourceId": "SMaddcf8d1dc091509bce418870d278b90",
    }
    created = await api.http.post(url, json=body)
    assert created.status_code == 201
    communication = created.json()
    assert communication["author"]["participantId"] == customer["id"]
    assert communication["recipients"][0]["participantId"] == agent["id"]
    assert communication["recipients"][0]["deliveryStatus"] == "DELIVERED"

    again = await api.http.post(url, json={**body, "content": {"type": "TEXT", "text": "Hi!"}})
    assert again.status_code == 200  # same resourceId: an update, not a second message
    assert again.json()["id"] == communication["id"]

    fetched = await api.http.get(f"{url}/{communication['id']}")
    assert fetched.json()["content"]["text"] == "Hi!"
    listed = await api.http.get(url, params={"channelId": body["channelId"]})
    assert [c["id"] for c in listed.json()["communications"]] == [communication["id"]]
    by_call = await api.http.get(f"{API}/Conversations", params={"channelId": body["channelId"]})
    assert [c["id"] for c in by_call.json()["conversations"]] == [conversation["id"]]
    nothing = await api.http.get(url, params={"channelId": "SMother"})
    assert nothing.json()["communications"] == []

    _assert_twilio_400(await api.http.post(url, json={**body, "recipients": []}), "recipients")
    _assert_twilio_400(
        await api.http.post(url, json={**body, "author": {"participantId": "x", **body["author"]}}),
        "author.participantId",
    )
    _assert_twilio_400(
        await api.http.post(url, json={**body, "content": {"type": "IMAGE", "text": "x"}}),
        "content",
    )


async def test_send_message_action(api: Api) -> None:
    conversation = await api.sms_pair()
    customer, agent = conversation["participants"]
    url = f"{API}/Conversations/{conversation['id']}/Actions"
    body = {
        "type": "SEND_MESSAGE",
        "payload": {
            "from": {"participantId": agent["id"], "channel": "SMS"},
            "to": [{"participantId": customer["id"], "channel": "SMS"}],
            "content": {"text": "Order #4521 shipped Monday."},
            "channelSettings": {"channelId": "SMaddcf8d1dc091509bce418870d278b90"},
        },
    }
    response = await api.http.post(url, json=body)
    assert response.status_code == 202
    action = response.json()
    assert set(action) == {"id", "type", "status", "conversationId", "related", "createdAt"}
    assert action["id"].startswith("conv_action_")
    assert action["status"] == "PENDING"
    assert action["type"] == "action-send-message"
    message_sid = action["related"]["messageSid"]

    fetched = (await api.http.get(f"{url}/{action['id']}")).json()
    assert fetched["status"] == "COMPLETED"
    assert fetched["failureReason"] is None
    communications = (
        await api.http.get(f"{API}/Conversations/{conversation['id']}/Communications")
    ).json()["communications"]
    sent = communications[-1]
    assert sent["id"] == fetched["related"]["communicationId"]
    assert sent["author"] == {
        "address": "+15005550006",
        "channel": "SMS",
        "participantId": agent["id"],
    }
    assert sent["resourceId"] == message_sid
    assert sent["recipients"][0]["address"] == "+14155550123"
    assert sent["recipients"][0]["deliveryStatus"] == "DELIVERED"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"type": "START_FLOW"}, ["type"]),
        ({"payload": {"to": []}}, ["payload.to"]),
        ({"payload": {"from": {"participantId": "nobody"}}}, ["payload.from.participantId"]),
        ({"payload": {"to": [{"participantId": "nobody"}]}}, ["payload.to.0.participantId"]),
        ({"payload": {"content": {}}}, ["payload.content.text"]),
        ({"payload": {"from": {"channel": "SMS"}}}, ["payload.from"]),
    ],
)
async def test_bad_actions_are_400_naming_the_field(
    api: Api, change: dict[str, Any], words: list[str]
) -> None:
    conversation = await api.sms_pair()
    customer, agent = conversation["participants"]
    payload = {
        "from": {"participantId": agent["id"], "channel": "SMS"},
        "to": [{"participantId": customer["id"], "channel": "SMS"}],
        "content": {"text": "hello"},
    }
    payload.update(change.get("payload", {}))
    body = {"type": change.get("type", "SEND_MESSAGE"), "payload": payload}
    response = await api.http.post(f"{API}/Conversations/{conversation['id']}/Actions", json=body)
    _assert_twilio_400(response, *words)


async def test_chat_send_requires_channel_id(api: Api) -> None:
    conversation = await api.conversation(
        participants=[
            {"type": "CUSTOMER", "addresses": [{"channel": "CHAT", "address": "web-visitor-1"}]},
            {"type": "AI_AGENT", "addresses": [{"channel": "CHAT", "address": "ai-assistant"}]},
        ]
    )
    customer, agent = conversation["participants"]
    payload: dict[str, Any] = {
        "from": {"participantId": agent["id"], "channel": "CHAT"},
        "to": [{"participantId": customer["id"], "channel": "CHAT"}],
        "content": {"text": "Yes, until it ships."},
    }
    url = f"{API}/Conversations/{conversation['id']}/Actions"
    missing = await api.http.post(url, json={"type": "SEND_MESSAGE", "payload": payload})
    _assert_twilio_400(missing, "channelSettings.channelId")
    payload["channelSettings"] = {"channelId": "CH7ea0d62a2bf0f4b4239e63aee0bb18b0"}
    sent = await api.http.post(url, json={"type": "SEND_MESSAGE", "payload": payload})
    assert sent.status_code == 202


async def test_participants_conflict_get_and_replace(api: Api) -> None:
    conversation = await api.sms_pair()
    customer = conversation["participants"][0]
    url = f"{API}/Conversations/{conversation['id']}/Participants"
    duplicate = await api.http.post(
        url, json={"addresses": [{"channel": "SMS", "address": "+14155550123"}]}
    )
    assert duplicate.status_code == 409
    assert duplicate.headers["X-Conflicting-Resource-Id"] == customer["id"]
    _assert_twilio_400(await api.http.post(url, json={"type": "CUSTOMER"}), "addresses")
    replaced = await api.http.put(
        f"{url}/{customer['id']}",
        json={"type": "CUSTOMER", "profileId": "mem_profile_1rh5048d9qrfn67babyc2dpgcr"},
    )
    assert replaced.json()["addresses"] == []
    assert replaced.json()["profileId"] == "mem_profile_1rh5048d9qrfn67babyc2dpgcr"
    missing = await api.http.get(f"{url}/conv_participant_nobody")
    assert missing.status_code == 404


async def test_closed_conversation_frees_the_grouping(api: Api) -> None:
    first = await api.sms_pair()
    await api.http.put(f"{API}/Conversations/{first['id']}", json={"status": "CLOSED"})
    second = await api.sms_pair()
    assert second["id"] != first["id"]
    other_customer = await api.sms_pair("+14155550999")
    assert other_customer["id"] != second["id"]


async def test_metadata_merge_patch_deletes_with_null(api: Api) -> None:
    conversation = await api.conversation(metadata={"a": "1", "b": "2"})
    response = await api.http.patch(
        f"{API}/Conversations/{conversation['id']}", json={"metadata": {"a": None, "c": "3"}}
    )
    assert response.json()["metadata"] == {"b": "2", "c": "3"}


async def test_configuration_validation_and_delete(api: Api) -> None:
    url = f"{API}/ControlPlane/Configurations"
    _assert_twilio_400(await api.http.post(url, json={}), "displayName")
    _assert_twilio_400(await api.http.post(url, json={"displayName": "bad/name"}), "displayName")
    _assert_twilio_400(
        await api.http.post(
            url, json={"displayName": "x", "statusCallbacks": [{"url": "ftp://x/y"}]}
        ),
        "statusCallbacks",
    )
    _assert_twilio_400(
        await api.http.post(
            url,
            json={
                "displayName": "x",
                "channelSettings": {"SMS": {"statusTimeouts": {"inactive": 0}}},
            },
        ),
        "inactive",
    )
    key = {"Idempotency-Key": "7c9a3b6e-0000-4000-8000-000000000001"}
    created = await api.http.post(url, json={"displayName": "temp"}, headers=key)
    replayed = await api.http.post(url, json={"displayName": "temp"}, headers=key)
    assert created.status_code == replayed.status_code == 202
    assert created.json() == replayed.json()
    config_id = created.json()["related"]["configurationId"]
    assert len((await api.http.get(url)).json()["configurations"]) == 2

    conversation = await api.conversation(configurationId=config_id)
    in_use = await api.http.delete(f"{url}/{config_id}")
    assert in_use.status_code == 409
    assert in_use.headers["X-Conflicting-Resource-Id"] == conversation["id"]
    await api.http.put(f"{API}/Conversations/{conversation['id']}", json={"status": "CLOSED"})
    deleted = await api.http.delete(f"{url}/{config_id}")
    assert deleted.status_code == 202
    assert (await api.http.get(f"{url}/{config_id}")).status_code == 404


class _FakeMemory:
    """Only what the Orchestrator asks of Memory: identity resolution."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    async def resolve_profile(self, store_id: str, channel: str, address: str) -> str | None:
        self.calls.append((store_id, channel, address))
        return "mem_profile_1rh5048d9qrfn67babyc2dpgcr" if address == "+14155550123" else None


def _install_resolver(ctx: SandboxContext) -> None:
    ctx.products.memory = _FakeMemory()  # type: ignore[assignment]


async def test_customers_get_profile_ids_from_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("tests_fake_memory")
    module.install = _install_resolver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tests_fake_memory", module)
    app = create_app(
        SandboxSettings(db=":memory:"),
        products=["tests_fake_memory", "tac_sandbox.products.conversations"],
    )
    ctx: SandboxContext = app.state.sandbox
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://sandbox",
            auth=(ctx.identity.api_key, ctx.identity.api_secret),
        ) as http,
    ):
        api = Api(http, app)
        conversation = await api.sms_pair()
        other = await api.sms_pair("+14155550999")
    known, agent = conversation["participants"]
    assert known["profileId"] == "mem_profile_1rh5048d9qrfn67babyc2dpgcr"
    assert "profileId" not in agent
    assert "profileId" not in other["participants"][0]
    memory = ctx.products.memory
    assert isinstance(memory, _FakeMemory)
    assert memory.calls == [
        (ctx.identity.memory_store_id, "SMS", "+14155550123"),
        (ctx.identity.memory_store_id, "SMS", "+14155550999"),
    ]
