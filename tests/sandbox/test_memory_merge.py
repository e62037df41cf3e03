"""Identity resolution merges profiles that come to share an identifier (301 for the old id)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _products_support import MEMORY, asgi_client, ctx_of, make_app, serve, twilio_client

pytestmark = pytest.mark.integration


async def _create(http: Any, profiles: str, contact: dict[str, str]) -> str:
    response = await http.post(profiles, json={"traits": {"Contact": contact}})
    assert response.status_code == 202
    return str(response.json()["id"])


async def test_a_patch_that_shares_an_identifier_merges_into_the_earliest_profile() -> None:
    app = make_app([MEMORY])
    store = ctx_of(app).identity.memory_store_id
    profiles = f"/memory/v1/Stores/{store}/Profiles"
    async with asgi_client(app) as http:
        older = await _create(http, profiles, {"phone": "+14155550123", "firstName": "Ana"})
        newer = await _create(http, profiles, {"email": "ana@example.com"})
        note = {
            "observations": [
                {"content": "Likes tea.", "source": "test", "occurredAt": "2025-01-01T00:00:00Z"}
            ]
        }
        await http.post(f"{profiles}/{newer}/Observations", json=note)
        await http.patch(
            f"{profiles}/{newer}", json={"traits": {"Contact": {"phone": "+14155550123"}}}
        )
        moved = await http.get(f"{profiles}/{newer}")
        canonical = (await http.get(f"{profiles}/{older}")).json()
        by_email = (
            await http.post(
                f"{profiles}/Lookup", json={"idType": "email", "value": "ana@example.com"}
            )
        ).json()
        recall = (await http.post(f"{profiles}/{newer}/Recall", json={})).json()
    assert moved.status_code == 301
    assert moved.json()["message"] == "This resource has moved."
    assert moved.json()["uri"].endswith(f"/memory/v1/Stores/{store}/Profiles/{older}")
    assert moved.headers["location"] == moved.json()["uri"]
    assert canonical["traits"]["Contact"] == {
        "phone": "+14155550123",
        "firstName": "Ana",
        "email": "ana@example.com",
    }
    assert by_email["profiles"] == [older]
    assert [o["content"] for o in recall["observations"]] == ["Likes tea."]


async def test_create_with_identifiers_of_two_profiles_merges_them() -> None:
    app = make_app([MEMORY])
    store = ctx_of(app).identity.memory_store_id
    profiles = f"/memory/v1/Stores/{store}/Profiles"
    async with asgi_client(app) as http:
        by_phone = await _create(http, profiles, {"phone": "+14155550123"})
        by_email = await _create(http, profiles, {"email": "ana@example.com"})
        both = await _create(http, profiles, {"phone": "+14155550123", "email": "ana@example.com"})
        moved = await http.get(f"{profiles}/{by_email}")
    assert both == by_phone
    assert moved.status_code == 301
    async with serve(app) as url:
        memory = twilio_client(app, url).memory.v1
        moved_instance = await asyncio.to_thread(lambda: memory.profiles(store, by_email).fetch())
    # The library does not follow redirects: it returns the 301 body, as against Twilio.
    assert moved_instance.message == "This resource has moved."
