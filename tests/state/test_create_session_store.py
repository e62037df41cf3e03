"""``create_session_store``: which backend ``TAC_STATE_URL`` selects, and its errors."""

from __future__ import annotations

import importlib
import sys

import pytest

from tac.core.errors import TACConfigError
from tac.state import InMemorySessionStore, create_session_store
from tac.state.redis import RedisSessionStore

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("url", [None, ""])
def test_no_url_is_in_process(url: str | None) -> None:
    assert isinstance(create_session_store(url), InMemorySessionStore)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "REDIS://user:secret@cache.internal:6380/2",
        "rediss://cache.example.com:6380",
        "unix:///run/redis/redis.sock?db=1",
    ],
)
async def test_redis_urls_select_redis_without_connecting(url: str) -> None:
    store = create_session_store(url)
    assert isinstance(store, RedisSessionStore)
    await store.aclose()


@pytest.mark.parametrize(
    "url", ["postgres://admin:hunter2@db/tac", "memory", "http://redis:6379", "redis:/x"]
)
def test_other_urls_are_a_config_error(url: str) -> None:
    with pytest.raises(TACConfigError) as info:
        create_session_store(url)
    assert info.value.variable == "TAC_STATE_URL"
    assert "redis://" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_a_malformed_redis_url_is_a_config_error() -> None:
    with pytest.raises(TACConfigError) as info:
        create_session_store("redis://:hunter2@cache:notaport/0")
    assert info.value.variable == "TAC_STATE_URL"
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.delitem(sys.modules, "tac.state.redis")
    with pytest.raises(TACConfigError, match=r'pip install "opentac\[redis\]"'):
        create_session_store("redis://127.0.0.1:6379")
    with pytest.raises(ImportError, match=r'pip install "opentac\[redis\]"'):
        importlib.import_module("tac.state.redis")
