"""The sandbox framework: auth, Twilio-shaped errors, faults and request records."""

import base64

import httpx
import pytest
from fastapi import APIRouter

from tac.sandbox import SandboxSettings, create_app
from tac_sandbox._context import SandboxContext
from tac_sandbox._db import Database
from tac_sandbox._errors import TwilioError
from tac_sandbox._settings import SandboxIdentity

pytestmark = pytest.mark.integration


def _install_echo(ctx: SandboxContext) -> None:
    router = APIRouter()

    @router.get("/v1/Things/{thing}")
    async def get_thing(thing: str) -> dict[str, str]:
        if thing == "missing":
            raise TwilioError(404, "The requested resource /Things/missing was not found")
        return {"id": thing}

    ctx.add_product("echo", router)


@pytest.fixture
def app_and_identity(monkeypatch: pytest.MonkeyPatch) -> tuple[object, SandboxIdentity]:
    import sys
    import types

    module = types.ModuleType("tests_echo_product")
    module.install = _install_echo  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tests_echo_product", module)
    app = create_app(SandboxSettings(db=":memory:"), products=["tests_echo_product"])
    return app, app.state.sandbox.identity


def _client(app: object, user: str, password: str) -> httpx.AsyncClient:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://sandbox",
        headers={"Authorization": f"Basic {token}"},
    )


async def test_api_key_and_account_credentials_both_work(app_and_identity) -> None:
    app, ident = app_and_identity
    for user, password in (
        (ident.api_key, ident.api_secret),
        (ident.account_sid, ident.auth_token),
    ):
        async with _client(app, user, password) as client:
            response = await client.get("/echo/v1/Things/a1")
        assert response.status_code == 200
        assert response.json() == {"id": "a1"}


async def test_wrong_credentials_get_twilio_401(app_and_identity) -> None:
    app, ident = app_and_identity
    async with _client(app, ident.api_key, "wrong") as client:
        response = await client.get("/echo/v1/Things/a1")
    assert response.status_code == 401
    assert response.json()["code"] == 20003
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_not_found_is_twilio_shaped(app_and_identity) -> None:
    app, ident = app_and_identity
    async with _client(app, ident.api_key, ident.api_secret) as client:
        response = await client.get("/echo/v1/Things/missing")
        unknown_route = await client.get("/echo/v1/Nope")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == 20404
    assert body["more_info"] == "https://www.twilio.com/docs/errors/20404"
    assert unknown_route.status_code == 404
    assert unknown_route.json()["status"] == 404


async def test_outage_fault_and_request_records(app_and_identity) -> None:
    app, ident = app_and_identity
    async with _client(app, ident.api_key, ident.api_secret) as client:
        put = await client.put("/sandbox/faults/echo", json={"outage": True})
        assert put.status_code == 200
        failed = await client.get("/echo/v1/Things/a1")
        await client.delete("/sandbox/faults")
        ok = await client.get("/echo/v1/Things/a1")
        records = (await client.get("/sandbox/requests", params={"product": "echo"})).json()
    assert failed.status_code == 503
    assert failed.json()["code"] == 20503
    assert ok.status_code == 200
    assert [r["status"] for r in records["requests"]] == [503, 200]


async def test_bad_fault_rule_is_400_naming_the_field(app_and_identity) -> None:
    app, ident = app_and_identity
    async with _client(app, ident.api_key, ident.api_secret) as client:
        response = await client.put("/sandbox/faults/echo", json={"error_rate": 3})
    assert response.status_code == 400
    assert "error_rate" in response.json()["message"]


def test_identity_survives_reopening_the_database(tmp_path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    first = SandboxIdentity.load_or_create(Database(path))
    second = SandboxIdentity.load_or_create(Database(path))
    assert first == second
    assert first.account_sid.startswith("AC")
    assert len(first.account_sid) == 34


async def test_env_points_the_app_at_the_sandbox(app_and_identity) -> None:
    app, ident = app_and_identity
    async with _client(app, ident.api_key, ident.api_secret) as client:
        env = (await client.get("/sandbox/env")).json()
    assert env["TWILIO_API_BASE_URL"] == "http://127.0.0.1:8100"
    assert env["TAC_PUBLIC_BASE_URL"] == "http://127.0.0.1:8000"
    assert env["TWILIO_API_KEY"] == ident.api_key
    assert env["TWILIO_VOICE_PUBLIC_DOMAIN"] == "127.0.0.1:8000"
