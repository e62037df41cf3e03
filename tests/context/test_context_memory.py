"""MemoryClient against httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from tac.context import (
    InvalidResponseError,
    MemoryClient,
    RetryPolicy,
    ServerError,
    TwilioHTTP,
    TwilioTransportError,
)
from tac.models.memory import MemoryRetrievalRequest, ObservationCreate, SummaryCreate

pytestmark = pytest.mark.unit

MakeHTTP = Callable[..., tuple[TwilioHTTP, Any]]
EXAMPLES = Path(__file__).parent / "data"
STORE = "mem_store_11cnpejzxv90ee1fyqzenrjvbh"
OLD = "mem_profile_0000000000000000000000old1"
NEW = "mem_profile_1rh5048d9qrfn67babyc2dpgcr"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


async def test_path_injection_cannot_escape_the_store(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(200, json={}))
    memory = MemoryClient("mem_store_A", http=http)
    await memory.retrieve_memory("../../mem_store_B/Profiles/p2")
    raw = rec.requests[0].url.raw_path.decode()
    assert raw == "/v1/Stores/mem_store_A/Profiles/..%2F..%2Fmem_store_B%2FProfiles%2Fp2/Recall"


async def test_store_id_resolved_once_under_concurrency(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json={}))
    calls = 0

    async def resolve() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return STORE

    memory = MemoryClient(http=http, resolve_store_id=resolve)
    assert memory.store_id is None
    ids = await asyncio.gather(*(memory.get_store_id() for _ in range(20)))
    assert set(ids) == {STORE}
    assert calls == 1
    assert memory.store_id == STORE
    await memory.get_store_id()
    assert calls == 1


async def test_resolver_failure_is_not_cached(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json={}))
    answers: list[str | Exception] = [RuntimeError("config down"), STORE]

    async def resolve() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    memory = MemoryClient(http=http, resolve_store_id=resolve)
    with pytest.raises(RuntimeError, match="config down"):
        await memory.get_store_id()
    assert await memory.get_store_id() == STORE


async def test_missing_store_is_a_clear_error(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(200, json={}))
    with pytest.raises(ValueError, match="store_id"):
        await MemoryClient(http=http).retrieve_memory(NEW)
    assert rec.requests == []


async def test_resolver_returning_nothing_is_a_clear_error(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json={}))

    async def resolve() -> str:
        return ""

    with pytest.raises(ValueError, match="memoryStoreId"):
        await MemoryClient(http=http, resolve_store_id=resolve).get_store_id()


async def test_retrieve_memory_sends_request_and_drops_bad_items(
    make_http: MakeHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    payload = {
        "observations": [
            {"id": "mem_observation_1", "content": "Prefers email"},
            {"id": "mem_observation_2"},
        ],
        "summaries": [{"id": "mem_summary_1", "content": "Asked about shipping"}],
        "communications": [],
        "meta": {"queryTime": 12},
    }
    http, rec = make_http(lambda r: httpx.Response(200, json=payload))
    memory = MemoryClient(STORE, http=http)
    with caplog.at_level("WARNING", logger="tac.context"):
        result = await memory.retrieve_memory(
            NEW, MemoryRetrievalRequest(conversation_id="conv_1", query="shipping")
        )
    assert [o.id for o in result.observations] == ["mem_observation_1"]
    assert [s.id for s in result.summaries] == ["mem_summary_1"]
    assert "dropped 1" in caplog.text
    assert rec.requests[0].url.path == f"/v1/Stores/{STORE}/Profiles/{NEW}/Recall"
    assert rec.body() == {
        "conversationId": "conv_1",
        "query": "shipping",
        "observationsLimit": 20,
        "summariesLimit": 5,
        "communicationsLimit": 0,
        "relevanceThreshold": 0.0,
    }


async def test_retrieve_memory_parses_the_example(make_http: MakeHTTP) -> None:
    payload = example("memory-recall-response-with-communications.json")
    http, _ = make_http(lambda r: httpx.Response(200, json=payload))
    result = await MemoryClient(STORE, http=http).retrieve_memory(NEW)
    assert len(result.observations) == len(payload["observations"])
    assert len(result.communications) == len(payload["communications"])


async def test_retrieve_memory_raises_on_http_errors(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(500), retry=RetryPolicy(attempts=2))
    with pytest.raises(ServerError):
        await MemoryClient(STORE, http=http).retrieve_memory(NEW)
    assert len(rec.requests) == 2


async def test_retrieve_memory_raises_on_transport_errors(make_http: MakeHTTP) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    http, _ = make_http(refuse, retry=RetryPolicy(attempts=1))
    with pytest.raises(TwilioTransportError):
        await MemoryClient(STORE, http=http).retrieve_memory(NEW)


def profile_handler(location: str | None, body_uri: str | None = None) -> Any:
    moved = example("memory-profile-moved-301.json")
    if body_uri is not None:
        moved = dict(moved, uri=body_uri)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(OLD):
            headers = {"Location": location} if location else {}
            return httpx.Response(301, json=moved, headers=headers)
        return httpx.Response(
            200,
            json={"id": NEW, "traits": {"Contact": {"email": "a@example.com"}}},
            headers={"Canonical-Profile-Id": NEW},
        )

    return handler


async def test_get_profile_follows_merged_profile_redirect_once(make_http: MakeHTTP) -> None:
    location = f"https://memory.twilio.com/v1/Stores/{STORE}/Profiles/{NEW}"
    http, rec = make_http(profile_handler(location))
    profile = await MemoryClient(STORE, http=http).get_profile(OLD, trait_groups=["Contact", "X"])
    assert profile.id == NEW
    assert profile.traits == {"Contact": {"email": "a@example.com"}}
    assert [r.url.path for r in rec.requests] == [
        f"/v1/Stores/{STORE}/Profiles/{OLD}",
        f"/v1/Stores/{STORE}/Profiles/{NEW}",
    ]
    assert all(r.url.params["traitGroups"] == "Contact,X" for r in rec.requests)


async def test_get_profile_redirect_from_body_uri(make_http: MakeHTTP) -> None:
    http, rec = make_http(profile_handler(None))
    profile = await MemoryClient(STORE, http=http).get_profile(OLD)
    assert profile.id == NEW
    assert "traitGroups" not in rec.requests[1].url.params


async def test_get_profile_redirect_honours_api_base_url(make_http: MakeHTTP) -> None:
    location = f"http://sandbox.local:8000/memory/v1/Stores/{STORE}/Profiles/{NEW}"
    http, rec = make_http(profile_handler(location), api_base_url="http://sandbox.local:8000")
    profile = await MemoryClient(STORE, http=http).get_profile(OLD)
    assert profile.id == NEW
    assert str(rec.requests[1].url) == location


@pytest.mark.parametrize(
    "location",
    [
        f"https://evil.example.com/v1/Stores/{STORE}/Profiles/{NEW}",
        f"https://memory.twilio.com/v1/Stores/mem_store_other/Profiles/{NEW}",
        f"/v1/Stores/{STORE}/Profiles/../../other/Profiles/x",
    ],
)
async def test_get_profile_refuses_foreign_redirects(make_http: MakeHTTP, location: str) -> None:
    http, rec = make_http(profile_handler(location))
    with pytest.raises(InvalidResponseError, match="redirect"):
        await MemoryClient(STORE, http=http).get_profile(OLD)
    assert len(rec.requests) == 1


async def test_get_profile_does_not_follow_twice(make_http: MakeHTTP) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        target = OLD if request.url.path.endswith(NEW) else NEW
        location = f"https://memory.twilio.com/v1/Stores/{STORE}/Profiles/{target}"
        return httpx.Response(301, json={"uri": location}, headers={"Location": location})

    http, rec = make_http(handler)
    with pytest.raises(Exception) as info:
        await MemoryClient(STORE, http=http).get_profile(OLD)
    assert len(rec.requests) == 2
    assert getattr(info.value, "status", None) == 301


async def test_lookup_profile(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        lambda r: httpx.Response(200, json={"normalizedValue": "+13175556789", "profiles": [NEW]})
    )
    assert await MemoryClient(STORE, http=http).lookup_profile("phone", "+1 317 555 6789") == [NEW]
    assert rec.requests[0].url.path == f"/v1/Stores/{STORE}/Profiles/Lookup"
    assert rec.body() == {"idType": "phone", "value": "+1 317 555 6789"}


async def test_lookup_profile_tolerates_null_profiles(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json={"profiles": None}))
    assert await MemoryClient(STORE, http=http).lookup_profile("email", "a@b.c") == []


async def test_create_profile_returns_id(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        lambda r: httpx.Response(202, json=example("memory-profile-create-response.json"))
    )
    traits = {"Contact": {"phone": "+14155550123"}}
    assert await MemoryClient(STORE, http=http).create_profile(traits) == NEW
    assert rec.body() == {"traits": traits}


async def test_create_profile_without_id_is_invalid_response(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(202, json={"message": "ok"}))
    with pytest.raises(InvalidResponseError):
        await MemoryClient(STORE, http=http).create_profile({"Contact": {"phone": "+1"}})


async def test_patch_profile_traits(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(202, json={"message": "accepted"}))
    await MemoryClient(STORE, http=http).patch_profile_traits(
        NEW, {"Prefs": {"language": "es"}, "Old": None}
    )
    assert rec.requests[0].method == "PATCH"
    assert rec.body() == {"traits": {"Prefs": {"language": "es"}, "Old": None}}


async def test_create_observation_nested_body_and_default_time(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(202, json={"message": "accepted"}))
    answer = await MemoryClient(STORE, http=http).create_observation(
        NEW, "Prefers morning calls", conversation_ids=["conv_1"]
    )
    assert answer == {"message": "accepted"}
    assert rec.requests[0].url.path == f"/v1/Stores/{STORE}/Profiles/{NEW}/Observations"
    body = rec.body()
    assert list(body) == ["observations"]
    (item,) = body["observations"]
    assert item["content"] == "Prefers morning calls"
    assert item["source"] == "conversation-intelligence"
    assert item["conversationIds"] == ["conv_1"]
    occurred = datetime.fromisoformat(item["occurredAt"].replace("Z", "+00:00"))
    assert occurred.utcoffset() is not None
    assert occurred.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


async def test_create_observation_keeps_given_time(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(202, json={}))
    when = datetime(2026, 1, 6, 18, 30, tzinfo=timezone.utc)
    await MemoryClient(STORE, http=http).create_observation(NEW, "x", occurred_at=when)
    assert rec.body()["observations"][0]["occurredAt"] == "2026-01-06T18:30:00Z"


async def test_create_observation_is_not_retried_after_ambiguous_failure(
    make_http: MakeHTTP,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read")

    http, rec = make_http(handler)
    with pytest.raises(TwilioTransportError):
        await MemoryClient(STORE, http=http).create_observation(NEW, "x")
    assert len(rec.requests) == 1


async def test_create_observations_in_batches_of_ten(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(202, json={}))
    items: list[Any] = [ObservationCreate(content=f"o{i}") for i in range(11)]
    items.append({"content": "from dict", "source": "crm", "conversationIds": ["c"]})
    await MemoryClient(STORE, http=http).create_observations(NEW, items)
    sizes = [len(json.loads(r.content)["observations"]) for r in rec.requests]
    assert sizes == [10, 2]
    assert rec.body()["observations"][1]["source"] == "crm"


async def test_create_observations_validates_input(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(202, json={}))
    memory = MemoryClient(STORE, http=http)
    with pytest.raises(ValueError, match="empty"):
        await memory.create_observations(NEW, [])
    with pytest.raises(ValueError, match="invalid observation"):
        await memory.create_observations(NEW, [{"content": ""}])
    assert rec.requests == []


async def test_create_conversation_summaries(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(202, json={"message": "Summaries accepted"}))
    answer = await MemoryClient(STORE, http=http).create_conversation_summaries(
        NEW,
        [
            SummaryCreate(content="Asked about a refund", conversation_id="conv_1"),
            {"content": "Second", "conversationId": "conv_2", "occurredAt": "2026-01-06T18:30:00Z"},
        ],
    )
    assert answer == {"message": "Summaries accepted"}
    summaries = rec.body()["summaries"]
    assert summaries[0]["conversationId"] == "conv_1"
    assert summaries[0]["source"] == "conversation-intelligence"
    assert summaries[0]["occurredAt"].endswith("Z")
    assert summaries[1]["occurredAt"] == "2026-01-06T18:30:00Z"


async def test_list_observations_pages_and_filters(make_http: MakeHTTP) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "pageToken" in request.url.params:
            return httpx.Response(200, json={"observations": [{"id": "o2", "content": "b"}]})
        return httpx.Response(
            200,
            json={"observations": [{"id": "o1", "content": "a"}], "meta": {"nextToken": "n"}},
        )

    http, rec = make_http(handler)
    found = await MemoryClient(STORE, http=http).list_observations(
        NEW, source="crm", conversation_id="conv_1", order_by="asc"
    )
    assert [o.id for o in found] == ["o1", "o2"]
    params = rec.requests[0].url.params
    assert (params["source"], params["conversationId"], params["orderBy"]) == (
        "crm",
        "conv_1",
        "ASC",
    )
