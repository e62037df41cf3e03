"""Pure pieces of the sandbox: signing URLs, grouping keys, page tokens, addresses, times."""

import asyncio
import hashlib
import re

import pytest
from twilio.request_validator import RequestValidator

from tac_sandbox._errors import TwilioError
from tac_sandbox._notify import Changes
from tac_sandbox._time import iso, iso_ms
from tac_sandbox._webhooks import signed_url
from tac_sandbox.phone.customers import default_address
from tac_sandbox.products.conversations._shared import _grouping_key
from tac_sandbox.products.conversations.routes import _decode_token, _encode_token

pytestmark = pytest.mark.unit


def test_signed_url_matches_twilios_test_vector() -> None:
    body = b'{"property": "value", "boolean": true}'
    url = signed_url("https://mycompany.com/myapp.php?foo=1&bar=2", body)
    digest = hashlib.sha256(body).hexdigest()
    assert url == f"https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256={digest}"
    assert RequestValidator("12345").compute_signature(url, {}) == "a9nBmqA0ju/hNViExpshrM61xv4="
    assert signed_url("http://a/webhook", b"{}").startswith("http://a/webhook?bodySHA256=")


def _party(kind: str, channel: str, address: str, profile: str | None = None) -> dict:
    party = {"type": kind, "addresses": [{"channel": channel, "address": address}]}
    if profile:
        party["profileId"] = profile
    return party


def test_grouping_keys() -> None:
    sms = [_party("CUSTOMER", "SMS", "+14155550123"), _party("AI_AGENT", "SMS", "+18005550100")]
    wa = [
        _party("CUSTOMER", "WHATSAPP", "whatsapp:+14155550123"),
        _party("AI_AGENT", "WHATSAPP", "whatsapp:+18005550100"),
    ]
    by_channel = "GROUP_BY_PARTICIPANT_ADDRESSES_AND_CHANNEL_TYPE"
    assert _grouping_key(by_channel, sms) != _grouping_key(by_channel, wa)
    by_address = "GROUP_BY_PARTICIPANT_ADDRESSES"
    assert _grouping_key(by_address, sms) == _grouping_key(by_address, wa)
    one = [_party("CUSTOMER", "SMS", "+1", "mem_profile_a")]
    other = [_party("CUSTOMER", "CHAT", "visitor", "mem_profile_a")]
    assert _grouping_key("GROUP_BY_PROFILE", one) == _grouping_key("GROUP_BY_PROFILE", other)
    assert _grouping_key(by_channel, []) is None


def test_page_tokens_round_trip_and_reject_garbage() -> None:
    assert _decode_token(_encode_token(150)) == 150
    for bad in ("garbage!", _encode_token(1)[::-1], "b2Zmc2V0Onh4"):
        with pytest.raises(TwilioError) as caught:
            _decode_token(bad)
        assert caught.value.status == 400


@pytest.mark.parametrize(
    ("channel", "pattern"),
    [
        ("sms", r"^\+1415\d{7}$"),
        ("whatsapp", r"^whatsapp:\+1415\d{7}$"),
        ("rcs", r"^rcs:\+1415\d{7}$"),
        ("CHAT", r"^web-visitor-[0-9a-f]{8}$"),
    ],
)
def test_default_addresses(channel: str, pattern: str) -> None:
    addresses = {default_address(channel) for _ in range(50)}
    assert len(addresses) == 50
    assert all(re.match(pattern, a) for a in addresses)


def test_default_address_rejects_voice() -> None:
    with pytest.raises(ValueError, match="channel must be one of"):
        default_address("voice")


def test_timestamps() -> None:
    assert iso(1767724201.512) == "2026-01-06T18:30:01Z"
    assert iso_ms(1767724201.512) == "2026-01-06T18:30:01.512Z"


async def test_changes_wake_waiters() -> None:
    changes = Changes()
    box: list[int] = []

    async def later() -> None:
        await asyncio.sleep(0)
        box.append(1)
        changes.notify()

    task = asyncio.create_task(later())
    assert await changes.wait_until(lambda: list(box), timeout=5) == [1]
    await task
    assert await changes.wait_until(lambda: [], timeout=0) == []


async def test_unexpected_errors_still_answer_twilio_json(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    import httpx
    from fastapi import APIRouter

    from tac.sandbox import SandboxSettings, create_app

    def install(ctx: object) -> None:
        router = APIRouter()

        @router.get("/v1/Boom")
        async def boom() -> None:
            raise RuntimeError("bug")

        ctx.add_product("boom", router)  # type: ignore[attr-defined]

    module = types.ModuleType("tests_boom_product")
    module.install = install  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tests_boom_product", module)
    app = create_app(SandboxSettings(db=":memory:"), products=["tests_boom_product"])
    ident = app.state.sandbox.identity
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://s", auth=(ident.api_key, ident.api_secret)
    ) as http:
        response = await http.get("/boom/v1/Boom")
    assert response.status_code == 500
    assert response.json()["code"] == 20500
    assert "RuntimeError" in response.json()["message"]


def test_products_are_typed_and_the_named_lookup_maps_onto_them() -> None:
    from tac_sandbox import SandboxSettings, create_app
    from tac_sandbox.phone.control import VoicePhone
    from tac_sandbox.products.calls import CallsService

    ctx = create_app(SandboxSettings(db=":memory:")).state.sandbox
    assert isinstance(ctx.products.phone, VoicePhone)
    assert isinstance(ctx.products.calls, CallsService)
    assert ctx.products.voice_conversations is ctx.products.phone.link
    # Modules written against the older registry keep working.
    assert ctx.service("voice.phone") is ctx.products.phone
    assert ctx.service("webhooks") is ctx.products.webhooks
    assert ctx.service("calls.set_status") == ctx.products.calls.set_status
    assert ctx.service("nothing.here") is None
    ctx.provide("lane.thing", 42)
    assert ctx.service("lane.thing") == 42
