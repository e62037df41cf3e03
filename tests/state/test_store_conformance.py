"""The SessionStore contract, checked on every backend.

``stores.a`` and ``stores.b`` are two handles on one shared state: for Redis, two stores over
separate client connections (two "instances"); in process, the same store twice. TTLs are
tiny (50 ms) and tests sleep past them: they check expiry, never speed.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from _store_backends import Stores

from tac.models.memory import ProfileResponse
from tac.models.session import AuthorInfo, Channel, ConversationSession, PendingHandoffData
from tac.state import ClaimResult, SessionStore

SHORT = 0.05
PAST_SHORT = 0.12
LONG = 60.0


def make_session(conversation_id: str = "CH1", **fields: object) -> ConversationSession:
    return ConversationSession(conversation_id=conversation_id, channel=Channel.SMS, **fields)


def full_session(conversation_id: str = "CHfull") -> ConversationSession:
    return ConversationSession(
        conversation_id=conversation_id,
        channel=Channel.WHATSAPP,
        call_sid="CA123",
        profile_id="mem_profile_1",
        started_at=datetime(2026, 11, 22, 20, 15, 3, 123456, tzinfo=timezone(timedelta(hours=2))),
        profile=ProfileResponse(
            id="mem_profile_1",
            created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
            traits={"Contact": {"email": "ana@example.com", "age": 41, "vip": True}},
        ),
        author_info=AuthorInfo(address="whatsapp:+15551230000", participant_id="MB1"),
        ai_agent_info=AuthorInfo(address="whatsapp:+15559870000", participant_id="MB2"),
        metadata={"tier": "gold", "nested": {"n": [1, 2.5, None, "ü"]}},
        custom_parameters={"locale": "pt-BR", "campaign": "fall"},
        pending_handoff_data=PendingHandoffData(handoff_data='{"reason":"human"}'),
    )


async def test_backend_satisfies_the_protocol(store: SessionStore) -> None:
    assert isinstance(store, SessionStore)


# -- sessions --------------------------------------------------------------------------


async def test_create_session_only_when_absent(stores: Stores) -> None:
    first, created = await stores.a.create_session(make_session(metadata={"n": 1}), LONG)
    assert created is True
    assert first.metadata == {"n": 1}

    again, created = await stores.b.create_session(make_session(metadata={"n": 2}), LONG)
    assert created is False
    assert again.metadata == {"n": 1}
    stored = await stores.b.get_session("CH1")
    assert stored is not None
    assert stored.metadata == {"n": 1}
    assert await stores.a.session_count() == 1


async def test_concurrent_creates_have_one_winner(stores: Stores) -> None:
    results = await asyncio.gather(
        *(
            (stores.a if i % 2 else stores.b).create_session(make_session(metadata={"i": i}), LONG)
            for i in range(50)
        )
    )
    winners = [session for session, created in results if created]
    assert len(winners) == 1
    assert {session.metadata["i"] for session, _ in results} == {winners[0].metadata["i"]}


async def test_get_unknown_session_is_none(store: SessionStore) -> None:
    assert await store.get_session("CHnope") is None


async def test_save_replaces_a_stored_session_only(stores: Stores) -> None:
    session = make_session(metadata={"v": 1})
    assert await stores.a.save_session(session, LONG) is False  # creating is create_session's
    assert await stores.b.get_session("CH1") is None
    await stores.a.create_session(session, LONG)
    session = (await stores.b.get_session("CH1")) or session
    session.metadata["v"] = 2
    assert await stores.b.save_session(session, LONG) is True
    stored = await stores.a.get_session("CH1")
    assert stored is not None
    assert stored.metadata == {"v": 2}
    assert await stores.b.session_count() == 1


async def test_save_after_the_end_does_not_bring_the_session_back(stores: Stores) -> None:
    session, _ = await stores.a.create_session(make_session(), SHORT)
    assert await stores.b.end_session("CH1") is not None
    session.metadata["late"] = True
    assert await stores.a.save_session(session, LONG) is False
    assert await stores.b.get_session("CH1") is None
    assert await stores.a.session_count() == 0
    await asyncio.sleep(PAST_SHORT)
    assert await stores.b.pop_expired_sessions() == []


async def test_save_pushes_the_idle_deadline(stores: Stores) -> None:
    session, _ = await stores.a.create_session(make_session(), SHORT)
    await stores.b.save_session(session, LONG)
    await asyncio.sleep(PAST_SHORT)
    assert await stores.a.pop_expired_sessions() == []

    await stores.b.save_session(session, SHORT)
    await asyncio.sleep(PAST_SHORT)
    assert [s.conversation_id for s in await stores.a.pop_expired_sessions()] == ["CH1"]


async def test_get_does_not_extend_life(stores: Stores) -> None:
    await stores.a.create_session(make_session(), SHORT)
    for _ in range(4):
        assert await stores.b.get_session("CH1") is not None
        await asyncio.sleep(SHORT / 2)
    await asyncio.sleep(SHORT)
    assert [s.conversation_id for s in await stores.a.pop_expired_sessions()] == ["CH1"]


async def test_pop_expired_takes_only_due_sessions_once(stores: Stores) -> None:
    await stores.a.create_session(make_session("CHold1"), SHORT)
    await stores.a.create_session(make_session("CHold2"), SHORT)
    await stores.a.create_session(make_session("CHlive"), LONG)
    await asyncio.sleep(PAST_SHORT)

    expired = await stores.b.pop_expired_sessions()
    assert sorted(s.conversation_id for s in expired) == ["CHold1", "CHold2"]
    assert await stores.a.pop_expired_sessions() == []
    assert await stores.a.get_session("CHold1") is None
    assert await stores.a.get_session("CHlive") is not None
    assert await stores.a.session_count() == 1


async def test_pop_expired_respects_limit(stores: Stores) -> None:
    for i in range(5):
        await stores.a.create_session(make_session(f"CH{i}"), SHORT)
    await asyncio.sleep(PAST_SHORT)
    first = await stores.a.pop_expired_sessions(limit=3)
    rest = await stores.b.pop_expired_sessions(limit=3)
    assert len(first) == 3
    assert len(rest) == 2
    ids = [s.conversation_id for s in first + rest]
    assert sorted(ids) == [f"CH{i}" for i in range(5)]


async def test_concurrent_sweepers_never_share_a_session(stores: Stores) -> None:
    for i in range(30):
        await stores.a.create_session(make_session(f"CH{i}"), SHORT)
    await asyncio.sleep(PAST_SHORT)
    batches = await asyncio.gather(
        *((stores.a if i % 2 else stores.b).pop_expired_sessions(limit=7) for i in range(8))
    )
    ids = [s.conversation_id for batch in batches for s in batch]
    assert sorted(ids) == sorted(f"CH{i}" for i in range(30))


async def test_end_session_returns_it_to_exactly_one_caller(stores: Stores) -> None:
    await stores.a.create_session(full_session(), SHORT)
    results = await asyncio.gather(
        *((stores.a if i % 2 else stores.b).end_session("CHfull") for i in range(50))
    )
    ended = [r for r in results if r is not None]
    assert len(ended) == 1
    assert ended[0] == full_session()
    assert await stores.a.get_session("CHfull") is None
    assert await stores.b.session_count() == 0
    await asyncio.sleep(PAST_SHORT)
    assert await stores.a.pop_expired_sessions() == []


async def test_end_unknown_session_is_none(store: SessionStore) -> None:
    assert await store.end_session("CHnope") is None


async def test_end_session_drops_cache_handoff_and_call_link(stores: Stores) -> None:
    await stores.a.create_session(make_session(call_sid="CA1"), LONG)
    await stores.a.link_call("CA1", "CH1", LONG)
    await stores.a.set_cached_memory("CH1", {"observations": ["likes tea"]}, LONG)
    await stores.a.set_pending_handoff("CH1", '{"to":"human"}', LONG)

    assert await stores.b.end_session("CH1") is not None
    assert await stores.a.conversation_for_call("CA1") is None
    assert await stores.a.get_cached_memory("CH1") is None
    assert await stores.a.pop_pending_handoff("CH1") is None


async def test_end_session_keeps_a_call_link_that_moved_on(stores: Stores) -> None:
    await stores.a.create_session(make_session("CHa", call_sid="CA1"), LONG)
    await stores.a.link_call("CA1", "CHb", LONG)
    await stores.b.end_session("CHa")
    assert await stores.a.conversation_for_call("CA1") == "CHb"


async def test_session_round_trip_keeps_every_field(stores: Stores) -> None:
    original = full_session()
    await stores.a.create_session(original, LONG)
    stored = await stores.b.get_session("CHfull")
    assert stored == original
    assert stored is not None
    assert stored.channel is Channel.WHATSAPP
    assert stored.started_at.utcoffset() == timedelta(hours=2)
    assert stored.started_at == original.started_at
    assert stored.profile is not None
    assert stored.profile.traits["Contact"] == {"email": "ana@example.com", "age": 41, "vip": True}
    assert stored.author_info == AuthorInfo(address="whatsapp:+15551230000", participant_id="MB1")
    assert stored.metadata == {"tier": "gold", "nested": {"n": [1, 2.5, None, "ü"]}}
    assert stored.custom_parameters == {"locale": "pt-BR", "campaign": "fall"}
    assert stored.pending_handoff_data == PendingHandoffData(handoff_data='{"reason":"human"}')

    _, created = await stores.b.create_session(make_session("CHfull"), LONG)
    assert created is False


async def test_expired_session_comes_back_whole(stores: Stores) -> None:
    await stores.a.create_session(full_session(), SHORT)
    await asyncio.sleep(PAST_SHORT)
    assert await stores.b.pop_expired_sessions() == [full_session()]


# -- voice calls -------------------------------------------------------------------------


async def test_call_links(stores: Stores) -> None:
    assert await stores.a.conversation_for_call("CA1") is None
    await stores.a.link_call("CA1", "CH1", LONG)
    assert await stores.b.conversation_for_call("CA1") == "CH1"
    await stores.a.link_call("CA1", "CH2", LONG)
    assert await stores.b.conversation_for_call("CA1") == "CH2"
    await stores.b.unlink_call("CA1")
    assert await stores.a.conversation_for_call("CA1") is None
    await stores.b.unlink_call("CA1")


async def test_call_link_expires(stores: Stores) -> None:
    await stores.a.link_call("CA1", "CH1", SHORT)
    await asyncio.sleep(PAST_SHORT)
    assert await stores.b.conversation_for_call("CA1") is None


# -- memory cache ------------------------------------------------------------------------


async def test_cached_memory_round_trip_and_clear(stores: Stores) -> None:
    memory = {
        "observations": [{"id": "o1", "content": "prefers email", "score": 0.9}],
        "summaries": [],
        "communications": [{"author": {"address": "+1555"}, "text": "olá"}],
        "flags": {"partial": False, "source": None},
        "count": 3,
    }
    assert await stores.a.get_cached_memory("CH1") is None
    await stores.a.set_cached_memory("CH1", memory, LONG)
    assert await stores.b.get_cached_memory("CH1") == memory
    await stores.b.clear_cached_memory("CH1")
    assert await stores.a.get_cached_memory("CH1") is None


async def test_cached_memory_expires(stores: Stores) -> None:
    await stores.a.set_cached_memory("CH1", {"x": 1}, SHORT)
    await asyncio.sleep(PAST_SHORT)
    assert await stores.b.get_cached_memory("CH1") is None


# -- idempotency claims ------------------------------------------------------------------


async def test_claim_lifecycle(stores: Stores) -> None:
    assert await stores.a.claim("tok:ev") is ClaimResult.CLAIMED
    assert await stores.b.claim("tok:ev") is ClaimResult.LEASED
    await stores.a.complete("tok:ev")
    assert await stores.b.claim("tok:ev") is ClaimResult.DONE
    assert await stores.a.claim("tok:ev") is ClaimResult.DONE
    assert await stores.a.claim("other") is ClaimResult.CLAIMED


async def test_expired_lease_can_be_claimed_again(stores: Stores) -> None:
    assert await stores.a.claim("k", lease_seconds=SHORT) is ClaimResult.CLAIMED
    await asyncio.sleep(PAST_SHORT)
    assert await stores.b.claim("k") is ClaimResult.CLAIMED
    assert await stores.a.claim("k") is ClaimResult.LEASED


async def test_done_key_expires(stores: Stores) -> None:
    assert await stores.a.claim("k") is ClaimResult.CLAIMED
    await stores.a.complete("k", ttl_seconds=SHORT)
    assert await stores.b.claim("k") is ClaimResult.DONE
    await asyncio.sleep(PAST_SHORT)
    assert await stores.b.claim("k") is ClaimResult.CLAIMED


async def test_release_gives_back_only_an_unfinished_claim(stores: Stores) -> None:
    assert await stores.a.claim("k") is ClaimResult.CLAIMED
    await stores.a.release("k")
    assert await stores.b.claim("k") is ClaimResult.CLAIMED
    await stores.b.complete("k")
    await stores.a.release("k")
    assert await stores.a.claim("k") is ClaimResult.DONE
    await stores.a.release("never-claimed")
    assert await stores.a.claim("never-claimed") is ClaimResult.CLAIMED


async def test_concurrent_claims_have_one_winner(stores: Stores) -> None:
    results = await asyncio.gather(
        *((stores.a if i % 2 else stores.b).claim("tok:ev") for i in range(50))
    )
    assert results.count(ClaimResult.CLAIMED) == 1
    assert results.count(ClaimResult.LEASED) == 49


# -- pending handoffs --------------------------------------------------------------------


async def test_pending_handoff_pops_once(stores: Stores) -> None:
    assert await stores.a.pop_pending_handoff("CH1") is None
    await stores.a.set_pending_handoff("CH1", '{"reason":"agent"}', LONG)
    results = await asyncio.gather(
        *((stores.a if i % 2 else stores.b).pop_pending_handoff("CH1") for i in range(20))
    )
    assert [r for r in results if r is not None] == ['{"reason":"agent"}']
    assert await stores.a.pop_pending_handoff("CH1") is None


async def test_pending_handoff_expires(stores: Stores) -> None:
    await stores.a.set_pending_handoff("CH1", "{}", SHORT)
    await asyncio.sleep(PAST_SHORT)
    assert await stores.b.pop_pending_handoff("CH1") is None


# -- housekeeping ------------------------------------------------------------------------


async def test_purge_expired_drops_only_what_expired(stores: Stores) -> None:
    await stores.a.link_call("CAold", "CH1", SHORT)
    await stores.a.set_cached_memory("CHold", {"x": 1}, SHORT)
    await stores.a.set_pending_handoff("CHold", "{}", SHORT)
    await stores.a.claim("old", lease_seconds=SHORT)
    await stores.a.link_call("CAlive", "CH2", LONG)
    await stores.a.set_cached_memory("CHlive", {"x": 2}, LONG)
    await stores.a.set_pending_handoff("CHlive", "{}", LONG)
    await stores.a.claim("live")
    await stores.a.create_session(make_session("CHsession"), SHORT)
    await asyncio.sleep(PAST_SHORT)

    removed = await stores.b.purge_expired()
    # The in-process backend drops the four itself; Redis has already expired them.
    assert removed == (4 if stores.backend == "memory" else 0)
    assert await stores.a.conversation_for_call("CAold") is None
    assert await stores.a.get_cached_memory("CHold") is None
    assert await stores.a.pop_pending_handoff("CHold") is None
    assert await stores.a.claim("old") is ClaimResult.CLAIMED
    assert await stores.a.conversation_for_call("CAlive") == "CH2"
    assert await stores.a.get_cached_memory("CHlive") == {"x": 2}
    assert await stores.a.pop_pending_handoff("CHlive") == "{}"
    assert await stores.a.claim("live") is ClaimResult.LEASED
    # Sessions are left to pop_expired_sessions, which fires on_conversation_ended.
    assert await stores.a.session_count() == 1
    assert [s.conversation_id for s in await stores.a.pop_expired_sessions()] == ["CHsession"]
