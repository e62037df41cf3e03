"""The console's page and its two long-polls, over real HTTP: who may open the page, what the
long-polls return, and clear 4xx answers for bad input."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time

import httpx
import pytest

from tac._demo import CUSTOMER_NUMBER, demo_stack

pytestmark = pytest.mark.integration


async def test_the_page_carries_the_sandbox_config_and_its_files_are_served() -> None:
    async with (
        demo_stack(env={}) as (sandbox, _),
        httpx.AsyncClient(base_url=sandbox.url, timeout=60) as http,
    ):
        page = await http.get("/console")
        assert page.status_code == 200
        assert page.headers["x-frame-options"] == "DENY"
        config = json.loads(html.unescape(re.search(r'data-config="([^"]*)"', page.text)[1]))
        assert config["apiKey"] == sandbox.identity.api_key
        assert config["memoryStoreId"] == sandbox.identity.memory_store_id
        for name, kind in (("console.js", "javascript"), ("console.css", "css")):
            asset = await http.get(f"/console/static/{name}")
            assert asset.status_code == 200
            assert kind in asset.headers["content-type"]
        # Nothing on the page is fetched from elsewhere.
        assert not re.search(r"(src|href)=\"(https?:)?//", page.text)


async def test_the_page_is_refused_to_a_name_that_is_not_loopback() -> None:
    async with (
        demo_stack(env={}) as (sandbox, _),
        httpx.AsyncClient(base_url=sandbox.url, timeout=60) as http,
    ):
        refused = await http.get("/console", headers={"Host": "attacker.example:80"})
        assert refused.status_code == 403
        assert "only served to this machine" in refused.json()["message"]
        assert sandbox.identity.api_secret not in refused.text
        allowed = await http.get("/console", headers={"Host": "localhost"})
        assert allowed.status_code == 200


async def test_call_events_long_poll_streams_the_reply() -> None:
    async with demo_stack(env={}) as (sandbox, _):
        call = await sandbox.call(from_=CUSTOMER_NUMBER)
        path = f"/sandbox/console/calls/{call.id}/events"
        first = await sandbox.client.request("GET", path)
        cursor = first["cursor"]
        waiting = asyncio.create_task(
            sandbox.client.request("GET", path, params={"after": cursor, "wait": 10}, wait=10)
        )
        await call.say("What are your opening hours?")
        later = await waiting
        assert later["events"], "the long-poll returned nothing new"
        assert later["events"][0]["kind"] == "sent"  # the prompt, then the tokens after it
        tokens: list[str] = []
        cursor = later["cursor"]
        for event in later["events"]:
            if event["type"] == "text":
                tokens.append(event["data"]["token"])
        while "1 pm." not in "".join(tokens):  # the last words of the answer
            more = await sandbox.client.request(
                "GET", path, params={"after": cursor, "wait": 10}, wait=10
            )
            cursor = more["cursor"]
            tokens += [e["data"]["token"] for e in more["events"] if e["type"] == "text"]
        assert "Monday to Friday" in "".join(tokens)
        assert len(tokens) > 1
        await call.hang_up()
        done = await sandbox.client.request(
            "GET", path, params={"after": cursor, "wait": 10}, wait=10
        )
        while not done["ended"]:
            done = await sandbox.client.request(
                "GET", path, params={"after": done["cursor"], "wait": 10}, wait=10
            )
        assert done["ended"] is True


async def test_log_long_poll_has_api_calls_and_webhooks_with_latency() -> None:
    async with demo_stack(env={}) as (sandbox, _):
        since = time.time()
        customer = sandbox.customer("sms", CUSTOMER_NUMBER)
        await customer.ask("What is your returns policy?", timeout=15)
        entries: list[dict[str, object]] = []
        cursor = since
        while not any(str(e["label"]).startswith("COMMUNICATION_CREATED") for e in entries):
            result = await sandbox.client.request(
                "GET", "/sandbox/console/log", params={"after": cursor, "wait": 5}, wait=5
            )
            assert result["entries"], "no more log entries"
            entries += result["entries"]
            cursor = result["cursor"]
        search = [e for e in entries if e["kind"] == "api" and "/Search" in str(e["label"])]
        assert search
        assert isinstance(search[0]["ms"], float)
        assert search[0]["status"] == 200
        webhooks = [str(e["label"]) for e in entries if e["kind"] == "webhook"]
        assert any(label.startswith("COMMUNICATION_CREATED → http") for label in webhooks)
        assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/sandbox/console/calls/CA00000000000000000000000000000000/events", 404, "Call"),
        ("/sandbox/console/calls/CA00000000000000000000000000000000/events?after=-1", 400, "after"),
        ("/sandbox/console/log?after=yesterday", 400, "after"),
    ],
)
async def test_bad_requests_get_a_clear_4xx(path: str, status: int, words: str) -> None:
    async with demo_stack(env={}) as (sandbox, _):
        auth = (sandbox.identity.api_key, sandbox.identity.api_secret)
        async with (
            httpx.AsyncClient(base_url=sandbox.url, auth=auth, timeout=60) as http,
            httpx.AsyncClient(base_url=sandbox.url, timeout=60) as anonymous,
        ):
            response = await http.get(path)
            assert response.status_code == status, response.text
            assert words in response.json()["message"]
            assert (await anonymous.get(path)).status_code == 401
