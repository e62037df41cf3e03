"""The error tree, outcome_uncertain and the package's exports."""

from __future__ import annotations

import pytest

import tac.context
from tac.context import errors
from tac.context.errors import (
    AuthenticationError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TACError,
    TwilioAPIError,
    TwilioTimeoutError,
    TwilioTransportError,
    outcome_uncertain,
)

pytestmark = pytest.mark.unit

URL = "https://conversations.twilio.com/v2/Conversations/c1/Actions?x=1"


def api(cls: type[TwilioAPIError], status: int, **headers: str) -> TwilioAPIError:
    return cls("m", status=status, method="post", url=URL, headers=headers)


def test_tree_shape() -> None:
    for cls in (AuthenticationError, NotFoundError, ConflictError, RateLimitedError, ServerError):
        assert issubclass(cls, TwilioAPIError)
    assert issubclass(InvalidResponseError, TwilioAPIError)
    assert issubclass(TwilioTimeoutError, TwilioTransportError)
    assert issubclass(TwilioAPIError, TACError)
    assert issubclass(TwilioTransportError, TACError)
    assert not issubclass(TwilioTransportError, TwilioAPIError)


def test_string_forms_are_one_line_without_query() -> None:
    error = api(NotFoundError, 404)
    assert str(error) == "POST /v2/Conversations/c1/Actions -> 404: m"
    transport = TwilioTimeoutError("ReadTimeout", method="post", url=URL, request_sent=True)
    assert str(transport) == (
        "POST /v2/Conversations/c1/Actions failed (may have reached Twilio): ReadTimeout"
    )
    assert "x=1" not in repr(transport) + repr(error)


def test_missing_conflicting_id_is_none() -> None:
    assert api(ConflictError, 409).conflicting_resource_id is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("error", "uncertain"),
    [
        (TwilioTransportError("x", method="POST", url=URL, request_sent=False), False),
        (TwilioTimeoutError("x", method="POST", url=URL, request_sent=True), True),
        (api(ServerError, 500), True),
        (api(ServerError, 503), True),
        (api(ServerError, 503, **{"Retry-After": "1"}), False),
        (api(RateLimitedError, 429), False),
        (api(TwilioAPIError, 400), False),
        (ValueError("x"), False),
    ],
)
def test_outcome_uncertain(error: BaseException, uncertain: bool) -> None:
    assert outcome_uncertain(error) is uncertain


def test_exports() -> None:
    expected = {
        "ConversationClient",
        "MemoryClient",
        "KnowledgeClient",
        "StudioClient",
        "CallsClient",
        "TwilioHTTP",
        "RetryPolicy",
        *errors.__all__,
    }
    assert set(tac.context.__all__) == expected
    assert len(tac.context.__all__) == len(set(tac.context.__all__))
    for name in tac.context.__all__:
        assert getattr(tac.context, name) is not None
