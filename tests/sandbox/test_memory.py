"""Conversation Memory v1 in the sandbox: profiles, identity, observations, summaries, Recall."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import pytest
from _products_support import MEMORY, asgi_client, ctx_of, make_app, serve, twilio_client
from twilio.base.exceptions import TwilioRestException
from twilio.rest.memory.v1 import ProfileList
from twilio.rest.memory.v1.conversation_summary import ConversationSummaryList
from twilio.rest.memory.v1.lookup import LookupList
from twilio.rest.memory.v1.observation import ObservationList
from twilio.rest.memory.v1.recall import RecallList

from tac.sandbox import SandboxSettings, create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def app() -> Any:
    return make_app([MEMORY])


def _paths(app: Any) -> tuple[str, str]:
    store = ctx_of(app).identity.memory_store_id
    return store, f"/memory/v1/Stores/{store}/Profiles"


async def _profile(client: Any, profiles: str, traits: dict[str, Any]) -> str:
    response = await client.post(profiles, json={"traits": traits})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_official_client_profile_lifecycle_and_seed_003_patch(app: Any) -> None:
    store = ctx_of(app).identity.memory_store_id
    async with serve(app) as url:
        client = twilio_client(app, url)
        memory = client.memory.v1

        def scenario() -> dict[str, Any]:
            created = memory.profiles(store).create(
                profile_data=ProfileList.ProfileData(
                    {"traits": {"Contact": {"phone": "+14155550123", "firstName": "Alyssa"}}}
                )
            )
            # Seed 003's trait script, verbatim but for the ids.
            profile_traits = memory.profiles(store, created.id).patch(
                profile_patch=ProfileList.ProfilePatch(
                    {"traits": {"Contact": {"language": "spanish"}}}
                )
            )
            fetched = memory.profiles(store, created.id).fetch(trait_groups="Contact")
            found = memory.lookup(store).create(
                identifier=LookupList.Identifier({"idType": "phone", "value": "1-415-555-0123"})
            )
            return {
                "created": created,
                "message": profile_traits.message,
                "fetched": fetched,
                "found": found,
            }

        result = await asyncio.to_thread(scenario)
    assert result["created"].message == "Profile resolved and accepted for processing."
    assert result["created"].id.startswith("mem_profile_")
    assert result["message"] == "Trait modifications accepted for processing."
    assert result["fetched"].traits == {
        "Contact": {"phone": "+14155550123", "firstName": "Alyssa", "language": "spanish"}
    }
    assert result["found"].normalized_value == "+14155550123"
    assert result["found"].profiles == [result["created"].id]


async def test_official_client_observations_summaries_and_recall(app: Any) -> None:
    store = ctx_of(app).identity.memory_store_id
    async with asgi_client(app) as http:
        profile = await _profile(http, _paths(app)[1], {"Contact": {"email": "a@example.com"}})
    async with serve(app) as url:
        memory = twilio_client(app, url).memory.v1

        def scenario() -> tuple[Any, Any, list[Any], list[Any], Any]:
            obs = memory.observations(store, profile).create(
                create_observations_request=ObservationList.CreateObservationsRequest(
                    {
                        "observations": [
                            {
                                "content": "Customer prefers SMS updates over email.",
                                "source": "conversation-intelligence",
                                "occurredAt": "2025-12-20T16:02:11Z",
                            }
                        ]
                    }
                )
            )
            summaries = memory.conversation_summaries(store, profile).create(
                create_summaries_request=ConversationSummaryList.CreateSummariesRequest(
                    {
                        "summaries": [
                            {
                                "content": "Customer asked about a delayed order refund.",
                                "conversationId": "conv_conversation_0ap7mmmd7f0vf68q9wsz9z3h6d",
                                "occurredAt": "2026-01-06T18:35:00Z",
                                "source": "conversation-intelligence",
                            }
                        ]
                    }
                )
            )
            listed_obs = list(memory.observations(store, profile).list())
            listed_sums = list(memory.conversation_summaries(store, profile).list())
            recall = memory.recall(store, profile).create(
                memory_retrieval_request=RecallList.MemoryRetrievalRequest(
                    {"query": "refund for my delayed order", "observationsLimit": 5}
                )
            )
            return obs, summaries, listed_obs, listed_sums, recall

        obs, summaries, listed_obs, listed_sums, recall = await asyncio.to_thread(scenario)
    assert obs.message == "Observations creation accepted"
    assert summaries.message == "Summaries creation accepted"
    assert [o.content for o in listed_obs] == ["Customer prefers SMS updates over email."]
    assert listed_sums[0].conversation_id == "conv_conversation_0ap7mmmd7f0vf68q9wsz9z3h6d"
    assert recall.observations == []  # shares no term with the query
    assert [s["content"] for s in recall.summaries] == [
        "Customer asked about a delayed order refund."
    ]
    assert 0 < recall.summaries[0]["score"] <= 1
    assert recall.communications == []


async def test_identity_resolution_returns_the_existing_profile(app: Any) -> None:
    store, profiles = _paths(app)
    async with asgi_client(app) as http:
        first = await _profile(http, profiles, {"Contact": {"phone": "+1 (415) 555-0123"}})
        again = await _profile(http, profiles, {"Contact": {"phone": "415-555-0123", "x": 1}})
        other = await _profile(http, profiles, {"Contact": {"email": "Bo@Example.com"}})
        by_email = await http.post(
            f"{profiles}/Lookup", json={"idType": "email", "value": " bo@example.COM "}
        )
        missing = await http.post(f"{profiles}/Lookup", json={"idType": "phone", "value": "+1999"})
        merged = (await http.get(f"{profiles}/{first}")).json()
    assert again == first
    assert other != first
    assert merged["traits"]["Contact"]["x"] == 1
    assert by_email.json() == {"normalizedValue": "bo@example.com", "profiles": [other]}
    assert missing.json() == {"normalizedValue": "+1999", "profiles": []}
    assert store == ctx_of(app).identity.memory_store_id


async def test_resolve_profile_service_links_addresses_to_profiles(app: Any) -> None:
    store, profiles = _paths(app)
    memory = ctx_of(app).products.memory
    assert memory is not None
    resolve = memory.resolve_profile
    async with asgi_client(app) as http:
        known = await _profile(http, profiles, {"Contact": {"phone": "+14155550123"}})
        assert await resolve(store, "SMS", "+14155550123") == known
        assert await resolve(store, "WHATSAPP", "whatsapp:+14155550123") == known
        assert await resolve(store, "RCS", "rcs:+14155550123") == known
        created = await resolve(store, "SMS", "+16505550199")
        assert created is not None
        assert created != known
        assert await resolve(store, "VOICE", "+16505550199") == created
        by_mail = await resolve(store, "EMAIL", "Sam@Example.org")
        assert by_mail is not None
        assert await resolve(store, "CHAT", "web-visitor-42") is None
        assert await resolve(store, "RCS", "rcs:brand_agent") is None
        assert await resolve("mem_store_unknown", "SMS", "+14155550123") is None
        new_profile = (await http.get(f"{profiles}/{created}")).json()
        mail_profile = (await http.get(f"{profiles}/{by_mail}")).json()
    assert new_profile["traits"] == {"Contact": {"phone": "+16505550199"}}
    assert mail_profile["traits"] == {"Contact": {"email": "sam@example.org"}}


async def test_patch_is_a_deep_merge_and_null_removes(app: Any) -> None:
    _, profiles = _paths(app)
    async with asgi_client(app) as http:
        profile = await _profile(
            http, profiles, {"Contact": {"phone": "+14155550123", "lastName": "Mock"}}
        )
        await http.patch(
            f"{profiles}/{profile}",
            json={"traits": {"Contact": {"lastName": None}, "Prefs": {"channel": "sms"}}},
        )
        await http.patch(f"{profiles}/{profile}", json={"traits": {"Prefs": {"tone": "brief"}}})
        full = (await http.get(f"{profiles}/{profile}")).json()
        only_prefs = await http.get(f"{profiles}/{profile}", params={"traitGroups": "Prefs"})
        await http.patch(f"{profiles}/{profile}", json={"traits": {"Prefs": None}})
        dropped = (await http.get(f"{profiles}/{profile}")).json()
        traits = (await http.get(f"{profiles}/{profile}/Traits")).json()
    assert full["traits"] == {
        "Contact": {"phone": "+14155550123"},
        "Prefs": {"channel": "sms", "tone": "brief"},
    }
    assert only_prefs.json()["traits"] == {"Prefs": {"channel": "sms", "tone": "brief"}}
    assert only_prefs.headers["canonical-profile-id"] == profile
    assert dropped["traits"] == {"Contact": {"phone": "+14155550123"}}
    assert [(t["traitGroup"], t["name"]) for t in traits["traits"]] == [("Contact", "phone")]


@pytest.mark.parametrize(
    ("suffix", "body", "fragment"),
    [
        ("", None, "not valid JSON"),
        ("", [1], "JSON object"),
        ("", {"traits": {"Contact": {"firstName": "A"}}}, "identifier"),
        ("", {"trait": {}}, "traits"),
        ("/{p}", {"traits": "x"}, "traits"),
        ("/{p}/Observations", {"observations": []}, "observations"),
        (
            "/{p}/Observations",
            {"observations": [{"content": "x", "source": "s", "occurredAt": "yesterday"}]},
            "occurredAt",
        ),
        (
            "/{p}/Observations",
            {
                "observations": [
                    {"content": "x", "source": "s", "occurredAt": "2026-01-01T00:00:00Z"}
                ]
            }
            | {"extra": 1},
            "extra",
        ),
        ("/{p}/ConversationSummaries", {"summaries": [{"content": "x"}]}, "conversationId"),
        ("/{p}/Recall", {"observationsLimit": 101}, "observationsLimit"),
        ("/{p}/Recall", {"relevanceThreshold": 1.5}, "relevanceThreshold"),
        ("/{p}/Recall", {"query": "x" * 1025}, "query"),
        ("/{p}/Recall", {"limit": 3}, "limit"),
    ],
)
async def test_bad_bodies_get_twilio_shaped_400(
    app: Any, suffix: str, body: Any, fragment: str
) -> None:
    _, profiles = _paths(app)
    async with asgi_client(app) as http:
        profile = await _profile(http, profiles, {"Contact": {"phone": "+14155550123"}})
        path = profiles + suffix.format(p=profile)
        method = http.patch if suffix == "/{p}" else http.post
        if body is None:
            response = await method(path, content=b"{not json")
        else:
            response = await method(path, json=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["status"] == 400
    assert error["code"] == 20001
    assert fragment in error["message"]


async def test_unknown_store_and_profile_are_404(app: Any) -> None:
    _, profiles = _paths(app)
    async with asgi_client(app) as http:
        no_store = await http.post(
            "/memory/v1/Stores/mem_store_nope/Profiles", json={"traits": {"Contact": {}}}
        )
        no_profile = await http.post(f"{profiles}/mem_profile_nope/Recall", json={})
    assert no_store.status_code == 404
    assert no_profile.status_code == 404
    assert no_profile.json()["code"] == 20404


async def _observe(http: Any, path: str, items: list[tuple[str, str]]) -> None:
    body = {
        "observations": [
            {"content": content, "source": "test", "occurredAt": when} for content, when in items
        ]
    }
    assert (await http.post(path, json=body)).status_code == 202


async def test_recall_without_query_is_most_recent_first_without_score(app: Any) -> None:
    _, profiles = _paths(app)
    async with asgi_client(app) as http:
        profile = await _profile(http, profiles, {"Contact": {"phone": "+14155550123"}})
        await _observe(
            http,
            f"{profiles}/{profile}/Observations",
            [
                ("oldest", "2025-01-01T00:00:00Z"),
                ("newest", "2025-03-01T00:00:00Z"),
                ("middle", "2025-02-01T00:00:00Z"),
            ],
        )
        recall = (
            await http.post(f"{profiles}/{profile}/Recall", json={"observationsLimit": 2})
        ).json()
        windowed = (
            await http.post(
                f"{profiles}/{profile}/Recall",
                json={"beginDate": "2025-02-01T00:00:00Z", "endDate": "2025-03-01T00:00:00Z"},
            )
        ).json()
    assert [o["content"] for o in recall["observations"]] == ["newest", "middle"]
    assert all("score" not in o for o in recall["observations"])
    assert set(recall) == {"observations", "summaries", "communications", "meta"}
    assert isinstance(recall["meta"]["queryTime"], int)
    assert [o["content"] for o in windowed["observations"]] == ["middle"]


async def test_recall_ranks_by_relevance_with_limit_and_threshold(app: Any) -> None:
    _, profiles = _paths(app)
    when = "2025-01-01T00:00:00Z"
    async with asgi_client(app) as http:
        profile = await _profile(http, profiles, {"Contact": {"phone": "+14155550123"}})
        await _observe(
            http,
            f"{profiles}/{profile}/Observations",
            [
                ("Customer is allergic to peanuts.", when),
                ("Customer's order #4521 shipped late; the delivery was two days late.", when),
                ("Customer prefers delivery to the back door.", when),
                ("Customer likes jazz music.", when),
            ],
        )
        recall = f"{profiles}/{profile}/Recall"
        ranked = (await http.post(recall, json={"query": "late delivery of my order"})).json()
        top1 = (
            await http.post(recall, json={"query": "late delivery", "observationsLimit": 1})
        ).json()
        strict = (
            await http.post(recall, json={"query": "late delivery", "relevanceThreshold": 0.6})
        ).json()
    contents = [o["content"] for o in ranked["observations"]]
    assert contents == [
        "Customer's order #4521 shipped late; the delivery was two days late.",
        "Customer prefers delivery to the back door.",
    ]
    scores = [o["score"] for o in ranked["observations"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    assert [o["content"] for o in top1["observations"]] == contents[:1]
    assert [o["content"] for o in strict["observations"]] == contents[:1]
    assert all(o["score"] >= 0.6 for o in strict["observations"])


async def test_recall_infers_the_query_and_returns_communications(app: Any) -> None:
    _, profiles = _paths(app)
    ctx = ctx_of(app)
    conversation = {
        "id": "conv_conversation_1",
        "participants": [
            {"id": "conv_participant_c", "type": "CUSTOMER", "name": "Ana"},
            {"id": "conv_participant_a", "type": "AI_AGENT", "name": "Agent"},
        ],
    }
    async with asgi_client(app) as http:
        profile = await _profile(http, profiles, {"Contact": {"phone": "+14155550123"}})
        conversation["participants"][0]["profileId"] = profile  # type: ignore[index]
        await _observe(
            http,
            f"{profiles}/{profile}/Observations",
            [
                ("Customer is allergic to peanuts.", "2025-01-01T00:00:00Z"),
                ("Customer asked for a refund of a broken blender.", "2025-01-02T00:00:00Z"),
            ],
        )
        for index, (author, text) in enumerate(
            [("c", "Hi there"), ("a", "Hello! How can I help?"), ("c", "My blender is broken")]
        ):
            me = f"conv_participant_{author}"
            you = "conv_participant_a" if author == "c" else "conv_participant_c"
            communication = {
                "id": f"conv_communication_{index}",
                "conversationId": "conv_conversation_1",
                "author": {"address": f"+1{index}", "channel": "SMS", "participantId": me},
                "content": {"type": "TEXT", "text": text},
                "recipients": [
                    {
                        "address": "+1",
                        "channel": "SMS",
                        "participantId": you,
                        "deliveryStatus": "DELIVERED",
                    }
                ],
                "channelId": f"SM{index}",
                "createdAt": f"2026-01-06T18:30:0{index}Z",
            }
            await ctx.bus.publish(
                "communication.created",
                {"communication": communication, "conversation": conversation},
            )
        inferred = (
            await http.post(
                f"{profiles}/{profile}/Recall",
                json={"conversationId": "conv_conversation_1", "communicationsLimit": 2},
            )
        ).json()
        across = (
            await http.post(f"{profiles}/{profile}/Recall", json={"communicationsLimit": 10})
        ).json()
    assert [o["content"] for o in inferred["observations"]] == [
        "Customer asked for a refund of a broken blender."
    ]
    assert "score" in inferred["observations"][0]
    assert [c["content"]["text"] for c in inferred["communications"]] == [
        "Hello! How can I help?",
        "My blender is broken",
    ]
    last = inferred["communications"][-1]
    assert last["author"] == {
        "id": "conv_participant_c",
        "name": "Ana",
        "type": "CUSTOMER",
        "profileId": profile,
        "address": "+12",
        "channel": "SMS",
    }
    assert last["recipients"][0]["type"] == "AI_AGENT"
    assert last["recipients"][0]["deliveryStatus"] == "DELIVERED"
    assert last["channelId"] == "SM2"
    assert len(across["communications"]) == 3


async def test_observations_list_filters_and_pages(app: Any) -> None:
    _, profiles = _paths(app)
    async with asgi_client(app) as http:
        profile = await _profile(http, profiles, {"Contact": {"phone": "+14155550123"}})
        path = f"{profiles}/{profile}/Observations"
        for n in range(3):
            await _observe(http, path, [(f"note {n}", "2025-01-01T00:00:00Z")])
        first_page = (await http.get(path, params={"pageSize": 2, "orderBy": "ASC"})).json()
        token = first_page["meta"]["nextToken"]
        second_page = (
            await http.get(path, params={"pageSize": 2, "orderBy": "ASC", "pageToken": token})
        ).json()
        none = (await http.get(path, params={"source": "other"})).json()
        bad = await http.get(path, params={"pageSize": 0})
    assert [o["content"] for o in first_page["observations"]] == ["note 0", "note 1"]
    assert [o["content"] for o in second_page["observations"]] == ["note 2"]
    assert "nextToken" not in second_page["meta"]
    assert none["observations"] == []
    assert bad.status_code == 400


async def test_memory_faults_outage_error_rate_and_latency(app: Any) -> None:
    store, profiles = _paths(app)
    async with asgi_client(app) as http:
        profile = await _profile(http, profiles, {"Contact": {"phone": "+14155550123"}})
        await http.put("/sandbox/faults/memory", json={"outage": True})
        down = await http.post(f"{profiles}/{profile}/Recall", json={})
        memory = ctx_of(app).products.memory
        assert memory is not None
        resolve = memory.resolve_profile
        assert await resolve(store, "SMS", "+14155550123") is None
        await http.put("/sandbox/faults/memory", json={"error_rate": 1, "error_status": 429})
        limited = await http.get(f"{profiles}/{profile}")
        await http.put("/sandbox/faults/memory", json={"latency_ms": 30})
        slow = await http.get(f"{profiles}/{profile}")
        await http.delete("/sandbox/faults")
        fine = await http.get(f"{profiles}/{profile}")
        records = (await http.get("/sandbox/requests", params={"product": "memory"})).json()
    assert down.status_code == 503
    assert down.json()["code"] == 20503
    assert limited.status_code == 429
    assert limited.json()["code"] == 20429
    assert slow.status_code == 200
    assert fine.status_code == 200
    durations = [r["durationMs"] for r in records["requests"] if r["method"] == "GET"]
    assert durations[1] >= 30


async def test_profiles_observations_and_summaries_survive_a_restart(tmp_path: Any) -> None:
    db = str(tmp_path / "sandbox.sqlite3")
    first = make_app([MEMORY], db=db)
    store, profiles = _paths(first)
    async with asgi_client(first) as http:
        profile = await _profile(http, profiles, {"Contact": {"phone": "+14155550123"}})
        await http.patch(f"{profiles}/{profile}", json={"traits": {"Contact": {"language": "es"}}})
        await _observe(
            http, f"{profiles}/{profile}/Observations", [("likes tea", "2025-01-01T00:00:00Z")]
        )
        summary = {
            "content": "Talked about tea.",
            "conversationId": "conv_conversation_9",
            "occurredAt": "2025-01-01T00:00:00Z",
        }
        await http.post(
            f"{profiles}/{profile}/ConversationSummaries", json={"summaries": [summary]}
        )
    ctx_of(first).db.close()

    second = make_app([MEMORY], db=db)
    assert _paths(second)[0] == store
    async with asgi_client(second) as http:
        traits = (await http.get(f"{profiles}/{profile}")).json()["traits"]
        recall = (await http.post(f"{profiles}/{profile}/Recall", json={})).json()
        again = await _profile(http, profiles, {"Contact": {"phone": "+14155550123"}})
    assert traits == {"Contact": {"phone": "+14155550123", "language": "es"}}
    assert [o["content"] for o in recall["observations"]] == ["likes tea"]
    assert [s["content"] for s in recall["summaries"]] == ["Talked about tea."]
    assert again == profile


async def test_official_client_errors_are_twilio_exceptions(app: Any) -> None:
    store = ctx_of(app).identity.memory_store_id
    async with serve(app) as url:
        memory = twilio_client(app, url).memory.v1

        def fetch_missing() -> None:
            memory.profiles(store, "mem_profile_missing").fetch()

        with pytest.raises(TwilioRestException) as caught:
            await asyncio.to_thread(fetch_missing)
    assert caught.value.status == 404
    assert caught.value.code == 20404


async def test_gzip_request_bodies_are_accepted(app: Any) -> None:
    _, profiles = _paths(app)
    body = gzip.compress(json.dumps({"traits": {"Contact": {"phone": "+14155550123"}}}).encode())
    async with asgi_client(app) as http:
        response = await http.post(
            profiles,
            content=body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        broken = await http.post(
            profiles,
            content=b"not gzip",
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    assert response.status_code == 202
    assert broken.status_code == 400


async def test_default_app_serves_every_product() -> None:
    app = create_app(SandboxSettings(db=":memory:"))
    async with asgi_client(app) as http:
        health = (await http.get("/sandbox/health")).json()
        store = ctx_of(app).identity.memory_store_id
        stores = (await http.get("/memory/v1/ControlPlane/Stores")).json()
    assert {"memory", "knowledge", "studio", "webhooks", "api", "intelligence"} <= set(
        health["products"]
    )
    assert stores["stores"] == [store]


async def test_control_api_lists_profiles_and_resolves_addresses(app: Any) -> None:
    async with asgi_client(app) as http:
        resolved = (
            await http.post(
                "/sandbox/memory/resolve",
                json={"channel": "WHATSAPP", "address": "whatsapp:+14155550123"},
            )
        ).json()
        chat = (
            await http.post("/sandbox/memory/resolve", json={"channel": "CHAT", "address": "u1"})
        ).json()
        bad = await http.post("/sandbox/memory/resolve", json={"channel": "SMS"})
        listed = (await http.get("/sandbox/memory/profiles")).json()
    assert resolved["profileId"].startswith("mem_profile_")
    assert chat == {"profileId": None}
    assert bad.status_code == 400
    assert listed["profiles"] == [
        {
            "id": resolved["profileId"],
            "createdAt": listed["profiles"][0]["createdAt"],
            "traits": {"Contact": {"phone": "+14155550123"}},
        }
    ]


SEED_003_TRAIT_SCRIPT = """
import os
from twilio.rest import Client
from twilio.rest.memory.v1 import ProfileList
account_sid = os.environ["TWILIO_ACCOUNT_SID"]
auth_token =  os.environ["TWILIO_AUTH_TOKEN"]
client = Client(account_sid, auth_token, http_client=tac.sandbox.twilio_http_client())
profile_traits = client.memory.v1.profiles(
   "STORE_ID",
   "PROFILE_ID",
).patch(
   profile_patch=ProfileList.ProfilePatch(
       {"traits": {"Contact": {"language": "spanish"}}}
   )
)
print(profile_traits.message)
"""


async def test_seed_003_trait_script_with_account_credentials(
    app: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import tac.sandbox

    store, profiles = _paths(app)
    ident = ctx_of(app).identity
    async with asgi_client(app) as http:
        profile = await _profile(http, profiles, {"Contact": {"phone": "+14155550123"}})
        async with serve(app) as url:
            monkeypatch.setenv("TWILIO_API_BASE_URL", url)
            monkeypatch.setenv("TWILIO_ACCOUNT_SID", ident.account_sid)
            monkeypatch.setenv("TWILIO_AUTH_TOKEN", ident.auth_token)
            script = SEED_003_TRAIT_SCRIPT.replace("STORE_ID", store).replace("PROFILE_ID", profile)
            await asyncio.to_thread(exec, script, {"tac": tac})
        traits = (await http.get(f"{profiles}/{profile}")).json()["traits"]
    assert capsys.readouterr().out == "Trait modifications accepted for processing.\n"
    assert traits["Contact"]["language"] == "spanish"


@pytest.mark.parametrize(
    ("segment", "key", "item", "deleted"),
    [
        (
            "Observations",
            "observations",
            {"content": "Prefers SMS.", "source": "agent", "occurredAt": "2026-01-02T10:00:00Z"},
            "Observation accepted for deletion.",
        ),
        (
            "ConversationSummaries",
            "summaries",
            {
                "content": "Asked about a refund.",
                "conversationId": "conv_conversation_1",
                "occurredAt": "2026-01-02T10:00:00Z",
                "source": "agent",
            },
            "Summary accepted for deletion.",
        ),
    ],
)
async def test_items_are_fetched_and_deleted_by_id(
    app: Any, segment: str, key: str, item: dict[str, Any], deleted: str
) -> None:
    _, profiles = _paths(app)
    async with asgi_client(app) as http:
        profile = await _profile(http, profiles, {"Contact": {"email": "ana@example.com"}})
        items = f"{profiles}/{profile}/{segment}"
        bad = await http.post(items, json={key: [{**item, "occurredAt": "yesterday"}]})
        assert bad.status_code == 400
        assert f"{key}.0.occurredAt" in bad.text
        assert (await http.post(items, json={key: [item]})).status_code == 202
        listed = (await http.get(items)).json()[key]
        assert [i["content"] for i in listed] == [item["content"]]
        one = await http.get(f"{items}/{listed[0]['id']}")
        assert (one.status_code, one.json()["content"]) == (200, item["content"])
        gone = await http.delete(f"{items}/{listed[0]['id']}")
        assert (gone.status_code, gone.json()["message"]) == (202, deleted)
        assert (await http.get(f"{items}/{listed[0]['id']}")).status_code == 404
        assert (await http.delete(f"{items}/{listed[0]['id']}")).status_code == 404
        assert (await http.get(items)).json()[key] == []
