"""TAC core: no I/O at construction, memory retrieval rules and fallback, callbacks, sessions.

Twilio's side is a small fake ASGI app reached through the injectable transport; the
end-to-end tests against the sandbox live in tests/messaging, tests/voice and tests/seeds.
"""

import asyncio
import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tac import TAC, TACConfig
from tac.core.tac import profile_lookup_key
from tac.models.session import AuthorInfo, Channel, ConversationSession

pytestmark = pytest.mark.unit

STORE = "mem_store_0aaaaaaaaaaaaaaaaaaaaaaaaa"
PROFILE = "mem_profile_0bbbbbbbbbbbbbbbbbbbbbbbbb"
CONV = "conv_conversation_0ccccccccccccccccccccccccc"


def _config(**overrides: Any) -> TACConfig:
    values: dict[str, Any] = {
        "account_sid": "AC" + "0" * 32,
        "auth_token": "token",
        "api_key": "SK" + "1" * 32,
        "api_secret": "secret",
        "phone_number": "+15005550006",
        "conversation_configuration_id": "conv_configuration_0ddddddddddddddddddddddddd",
        "api_base_url": "http://twilio.test",
    }
    values.update(overrides)
    return TACConfig(**values)


class FakeTwilio:
    """Just enough of Orchestrator and Memory, with switches for failures."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.recall_status = 200
        self.profile_status = 200
        self.both_in_flight = asyncio.Event()
        self.in_flight = 0
        self.traits: dict[str, Any] = {"Contact": {"language": "spanish"}}
        app = FastAPI()

        @app.get("/conversations/v2/ControlPlane/Configurations/{cid}")
        async def configuration(cid: str) -> dict[str, Any]:
            self.calls.append("configuration")
            return {"id": cid, "memoryStoreId": STORE, "description": "x"}

        @app.post("/memory/v1/Stores/{store}/Profiles/Lookup")
        async def lookup(store: str, request: Request) -> dict[str, Any]:
            body = await request.json()
            self.calls.append(f"lookup:{body['idType']}:{body['value']}")
            return {"normalizedValue": body["value"], "profiles": [PROFILE]}

        @app.get("/memory/v1/Stores/{store}/Profiles/{profile}")
        async def profile(store: str, profile: str) -> Any:
            self.calls.append("profile")
            await self._meet()
            if self.profile_status != 200:
                return JSONResponse({"code": 20500, "message": "boom"}, self.profile_status)
            return {"id": profile, "traits": self.traits}

        @app.post("/memory/v1/Stores/{store}/Profiles/{profile}/Recall")
        async def recall(store: str, profile: str, request: Request) -> Any:
            body = await request.json()
            self.calls.append(f"recall:{body.get('query')}")
            await self._meet()
            if self.recall_status != 200:
                return JSONResponse({"code": 20500, "message": "down"}, self.recall_status)
            return {
                "observations": [{"id": "mem_observation_1", "content": "Prefers email"}],
                "summaries": [],
                "communications": [],
                "meta": {"queryTime": 3},
            }

        @app.get("/conversations/v2/Conversations/{cid}/Communications")
        async def communications(cid: str) -> dict[str, Any]:
            self.calls.append("communications")
            return {
                "communications": [
                    {
                        "id": "conv_communication_1",
                        "author": {"address": "+15005550100", "channel": "SMS"},
                        "content": {"type": "TEXT", "text": "hello"},
                    }
                ],
                "meta": {"key": "communications"},
            }

        self.app = app

    async def _meet(self) -> None:
        # Profile and Recall must be in flight together: each waits (briefly) for the other.
        self.in_flight += 1
        if self.in_flight >= 2:
            self.both_in_flight.set()
        try:
            await asyncio.wait_for(self.both_in_flight.wait(), timeout=0.5)
        except TimeoutError:
            pass
        finally:
            self.in_flight -= 1


@pytest.fixture
def fake() -> FakeTwilio:
    return FakeTwilio()


def _tac(fake: FakeTwilio, **overrides: Any) -> TAC:
    return TAC(_config(**overrides), transport=httpx.ASGITransport(app=fake.app))


def _session(address: str = "+15005550100", channel: str = "sms") -> ConversationSession:
    return ConversationSession(
        conversation_id=CONV, channel=channel, author_info=AuthorInfo(address=address)
    )


class NoNetwork(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"network I/O in a constructor: {request.url}")


def test_construction_does_no_io_and_builds_clients() -> None:
    tac = TAC(_config(knowledge_base_id="know_knowledgebase_1"), transport=NoNetwork())
    assert tac.is_orchestrator_enabled()
    assert tac.conversation_memory_client is not None
    assert tac.knowledge_client is not None
    relay_only = TAC(_config(conversation_configuration_id=None), transport=NoNetwork())
    assert not relay_only.is_orchestrator_enabled()
    assert relay_only.conversation_memory_client is None


def test_dict_config_is_validated_with_a_named_error() -> None:
    with pytest.raises(ValueError, match="observations_limit"):
        TAC({**_config().model_dump(), "memory_config": {"observations_limit": 500}})


@pytest.mark.parametrize(
    ("channel", "address", "expected"),
    [
        ("sms", "+15005550100", ("phone", "+15005550100")),
        ("voice", "+1 500 555 0100", ("phone", "+15005550100")),
        ("whatsapp", "whatsapp:+15005550100", ("phone", "+15005550100")),
        ("rcs", "rcs:+15005550100", ("phone", "+15005550100")),
        ("rcs", "rcs:brand_agent", None),
        ("sms", "jane@example.com", ("email", "jane@example.com")),
        ("chat", "+15005550100", None),
        ("chat", "user-42", None),
        ("sms", None, None),
    ],
)
def test_profile_lookup_rules(channel: str, address: str | None, expected: object) -> None:
    assert profile_lookup_key(channel, address) == expected


async def test_memory_first_with_profile_and_recall_concurrent(fake: FakeTwilio) -> None:
    tac = _tac(fake)
    session = _session()
    memory = await tac.retrieve_memory(session, query="my order", conversation_id=CONV)
    assert memory.has_memory_features
    assert [o.content for o in memory.observations] == ["Prefers email"]
    assert session.profile_id == PROFILE
    assert session.profile is not None
    assert session.profile.traits["Contact"]["language"] == "spanish"
    assert fake.both_in_flight.is_set(), "profile and recall were not fetched concurrently"
    assert fake.calls[:2] == ["configuration", "lookup:phone:+15005550100"]
    # Second turn: store id and profile id are known; only profile + recall go out.
    fake.calls.clear()
    await tac.retrieve_memory(session, query="again")
    assert sorted(fake.calls) == ["profile", "recall:again"]
    await tac.aclose()


async def test_whatsapp_address_is_looked_up_without_prefix(fake: FakeTwilio) -> None:
    tac = _tac(fake)
    await tac.retrieve_memory(_session("whatsapp:+15005550100", "whatsapp"))
    assert "lookup:phone:+15005550100" in fake.calls
    await tac.aclose()


async def test_recall_outage_falls_back_to_orchestrator_history(
    fake: FakeTwilio, caplog: pytest.LogCaptureFixture
) -> None:
    fake.recall_status = 503
    tac = _tac(fake)
    session = _session()
    memory = await tac.retrieve_memory(session, query="hi")
    assert memory.source == "orchestrator"
    assert memory.observations == []
    assert [c.content.text for c in memory.communications] == ["hello"]
    assert memory.communications[0].author.type == "CUSTOMER"
    assert session.profile is not None  # the profile still arrived
    assert any("Memory recall failed" in r.getMessage() for r in caplog.records)
    await tac.aclose()


async def test_profile_failure_does_not_lose_recall(fake: FakeTwilio) -> None:
    fake.profile_status = 500
    tac = _tac(fake)
    memory = await tac.retrieve_memory(_session(), query="hi")
    assert memory.has_memory_features
    assert len(memory.observations) == 1
    await tac.aclose()


async def test_chat_without_profile_uses_history(fake: FakeTwilio) -> None:
    tac = _tac(fake)
    memory = await tac.retrieve_memory(_session("user-42", "chat"))
    assert memory.source == "orchestrator"
    assert not any(c.startswith("lookup") for c in fake.calls)
    await tac.aclose()


async def test_relay_only_mode_is_empty_and_truthy(fake: FakeTwilio) -> None:
    tac = _tac(fake, conversation_configuration_id=None)
    memory = await tac.retrieve_memory(_session())
    assert memory
    assert memory.is_empty()
    assert fake.calls == []
    await tac.aclose()


async def test_overlong_and_blank_queries_still_reach_memory(fake: FakeTwilio) -> None:
    tac = _tac(fake)
    session = _session()
    await tac.retrieve_memory(session, query="x" * 5000)
    await tac.retrieve_memory(session, query="   ")
    recalls = [c for c in fake.calls if c.startswith("recall:")]
    assert recalls == ["recall:" + "x" * 1024, "recall:None"]
    await tac.aclose()


async def test_memory_modes(fake: FakeTwilio) -> None:
    tac = _tac(fake)
    session = _session()
    assert await tac.memory_for_turn(session, "never", "hi") is None
    first = await tac.memory_for_turn(session, "once", "hi")
    fake.calls.clear()
    second = await tac.memory_for_turn(session, "once", "again")
    assert first is not None
    assert second is not None
    assert fake.calls == []
    assert [o.content for o in second.observations] == ["Prefers email"]
    await tac.invalidate_memory_cache(CONV)
    await tac.memory_for_turn(session, "once", "after inactive")
    assert "recall:None" in fake.calls
    await tac.aclose()


async def test_callbacks_sync_async_and_decorator() -> None:
    tac = TAC(_config(), transport=NoNetwork())
    threads: list[str] = []

    @tac.on_message_ready
    def reply(message: str, session: ConversationSession, memory: object) -> str:
        threads.append(threading.current_thread().name)
        return message.upper()

    assert callable(reply)
    assert await tac.trigger_message_ready("hi", _session(), None) == "HI"
    assert threads[0] != threading.current_thread().name  # sync callbacks run off the loop

    @tac.on_message_ready
    async def bad(message: str, session: ConversationSession, memory: object) -> int:
        return 42

    with pytest.raises(TypeError, match="str or None"):
        await tac.trigger_message_ready("hi", _session(), None)


async def test_on_error_receives_callback_failures() -> None:
    tac = TAC(_config(), transport=NoNetwork())
    errors: list[tuple[BaseException, dict[str, Any]]] = []
    tac.on_error(lambda exc, context: errors.append((exc, context)))

    @tac.on_conversation_ended
    async def ended(session: ConversationSession) -> None:
        raise RuntimeError("cleanup failed")

    await tac.start_session(_session())
    assert await tac.end_session(CONV)
    assert isinstance(errors[0][0], RuntimeError)
    assert errors[0][1]["conversation_id"] == CONV
    assert errors[0][1]["callback"] == "on_conversation_ended"


async def test_conversation_ended_fires_exactly_once() -> None:
    tac = TAC(_config(), transport=NoNetwork())
    ended: list[str] = []
    tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
    await tac.start_session(_session())
    results = await asyncio.gather(*(tac.end_session(CONV) for _ in range(20)))
    assert results.count(True) == 1
    assert ended == [CONV]


async def test_idle_sessions_end_through_the_sweeper() -> None:
    tac = TAC(_config(session_ttl_seconds=0.05), transport=NoNetwork())
    ended: list[str] = []
    tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
    await tac.start_session(_session())
    await tac.start()
    for _ in range(100):
        if ended:
            break
        await asyncio.sleep(0.02)
    await tac.aclose()
    assert ended == [CONV]
    assert await tac.session_store.session_count() == 0


def test_channel_enum_contract() -> None:
    session = _session(channel="SMS")
    assert session.channel == "sms"
    assert session.channel == "SMS"
    assert f"{session.channel}" == "sms"
    assert hash(Channel.SMS) == hash("sms")
    assert session.model_dump(mode="json")["channel"] == "sms"
