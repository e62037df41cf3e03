"""RetryPolicy.compute, Retry-After parsing, base URLs and path encoding (pure)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from tac.context import RetryPolicy, TwilioHTTP
from tac.context._http import encode_path, parse_retry_after

pytestmark = pytest.mark.unit


def test_compute_without_jitter_doubles_and_caps() -> None:
    policy = RetryPolicy(base_delay=0.2, max_delay=1.0, jitter="none")
    assert [policy.compute(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_compute_huge_attempt_does_not_overflow() -> None:
    assert RetryPolicy(jitter="none", max_delay=5.0).compute(10_000) == 5.0


def test_full_jitter_stays_within_zero_and_ceiling() -> None:
    random.seed(7)
    policy = RetryPolicy(base_delay=0.5, max_delay=2.0, jitter="full")
    draws = [policy.compute(3) for _ in range(500)]
    assert all(0.0 <= d <= 2.0 for d in draws)
    assert len({round(d, 6) for d in draws}) > 100


def test_equal_jitter_keeps_half_the_delay() -> None:
    random.seed(3)
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0, jitter="equal")
    draws = [policy.compute(2) for _ in range(200)]
    assert all(1.0 <= d <= 2.0 for d in draws)


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"base_delay": -1}, {"max_retry_after": -0.1}, {"jitter": "weird"}],
)
def test_invalid_policy_is_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_compute_attempt_is_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        RetryPolicy().compute(0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("", None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_retry_after_seconds(header: str, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_absent() -> None:
    assert parse_retry_after(None) is None


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 6, 18, 30, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(header, now=now) == 7.0
    past = format_datetime(now - timedelta(minutes=1), usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def _http(**kwargs: object) -> TwilioHTTP:
    return TwilioHTTP(api_key="SK1", api_secret="secret", **kwargs)  # type: ignore[arg-type]


PRODUCTS = ["conversations", "memory", "knowledge", "studio", "api", "webhooks"]


@pytest.mark.parametrize("product", PRODUCTS)
def test_base_url_default_and_region(product: str) -> None:
    assert _http().base_url(product) == f"https://{product}.twilio.com"
    assert _http(region="ie1").base_url(product) == f"https://{product}.ie1.twilio.com"


@pytest.mark.parametrize("product", PRODUCTS)
def test_base_url_override_wins_over_region(product: str) -> None:
    http = _http(api_base_url="http://127.0.0.1:8000/twilio/", region="au1")
    assert http.base_url(product) == f"http://127.0.0.1:8000/twilio/{product}"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"region": "ie1.evil.com/"}, "region"),
        ({"region": ""}, "region"),
        ({"api_base_url": "ftp://x"}, "api_base_url"),
        ({"api_base_url": "127.0.0.1:8000"}, "api_base_url"),
    ],
)
def test_bad_settings_name_the_setting(kwargs: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        _http(**kwargs)


@pytest.mark.parametrize(("key", "secret"), [("", "s"), ("SK1", "")])
def test_credentials_are_required(key: str, secret: str) -> None:
    with pytest.raises(ValueError, match="api_"):
        TwilioHTTP(api_key=key, api_secret=secret)


def test_bad_product_is_rejected() -> None:
    with pytest.raises(ValueError, match="product"):
        _http().base_url("memory.evil.com/x")


def test_encode_path_keeps_each_id_in_one_segment() -> None:
    path = encode_path(
        "/v1/Stores/{store}/Profiles/{profile}/Recall",
        store="mem_store_A",
        profile="../../mem_store_B/Profiles/p2",
    )
    assert path == "/v1/Stores/mem_store_A/Profiles/..%2F..%2Fmem_store_B%2FProfiles%2Fp2/Recall"


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_encode_path_rejects_empty_and_dot_segments(bad: str) -> None:
    with pytest.raises(ValueError, match="profile"):
        encode_path("/p/{profile}", profile=bad)


def test_encode_path_encodes_query_and_fragment_characters() -> None:
    assert encode_path("/x/{id}", id="a?b#c d") == "/x/a%3Fb%23c%20d"
