"""TwilioHTTP against httpx.MockTransport: errors, retry modes, pooling, pagination."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tac.context import (
    AuthenticationError,
    ConflictError,
    ConversationClient,
    InvalidResponseError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    TACError,
    TwilioAPIError,
    TwilioHTTP,
    TwilioTimeoutError,
    TwilioTransportError,
)
from tac.context._transport import AiohttpSender, HttpxSender
from tac.models.conversation import (
    ActionParticipantRef,
    ActionTextContent,
    SendMessageActionPayload,
    SendMessageActionRequest,
)

pytestmark = pytest.mark.unit

MakeHTTP = Callable[..., tuple[TwilioHTTP, Any]]

CONV = "conv_conversation_0ap7mmmd7f0vf68q9wsz9z3h6d"
ACTION = {"id": "conv_action_1", "type": "action-send-message", "status": "PENDING"}


def reply() -> SendMessageActionRequest:
    return SendMessageActionRequest(
        payload=SendMessageActionPayload(
            from_=ActionParticipantRef(participant_id="conv_participant_agent", channel="SMS"),
            to=[ActionParticipantRef(participant_id="conv_participant_customer", channel="SMS")],
            content=ActionTextContent(text="Hello!"),
        )
    )


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


# Requests ------------------------------------------------------------------------------------


async def test_sends_basic_auth_user_agent_and_json(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(200, json={"ok": True}))
    body = await http.request_json("memory", "POST", "/v1/x", json={"a": 1})
    assert body == {"ok": True}
    request = rec.requests[0]
    expected = base64.b64encode(b"SKtestkey:s3cret-value").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.headers["User-Agent"].startswith("opentac/")
    assert "(Python 3." in request.headers["User-Agent"]
    assert str(request.url) == "https://memory.twilio.com/v1/x"
    assert rec.body() == {"a": 1}


async def test_user_agent_suffix() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["User-Agent"])
        return httpx.Response(204)

    http = TwilioHTTP(
        api_key="SK1",
        api_secret="x",
        user_agent_suffix="partner/1.0",
        transport=httpx.MockTransport(handler),
    )
    await http.request("api", "GET", "/x")
    http.user_agent_suffix = "tac-aws/2.0 (StrandsConnector)"
    await http.request("api", "GET", "/x")
    await http.aclose()
    assert seen[0].endswith(") partner/1.0")
    assert seen[1].endswith(") tac-aws/2.0 (StrandsConnector)")
    assert http.user_agent == seen[1]


async def test_path_must_be_absolute(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200))
    with pytest.raises(ValueError, match="path"):
        await http.request("api", "GET", "x")


# Error mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, TwilioAPIError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (412, TwilioAPIError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
    ],
)
async def test_status_maps_to_error_class(
    make_http: MakeHTTP, status: int, cls: type[TwilioAPIError]
) -> None:
    code = 20000 + status
    http, _ = make_http(lambda r: httpx.Response(status, json=error_body(status, code, "Nope")))
    with pytest.raises(TwilioAPIError) as info:
        await http.request("conversations", "GET", "/v2/Conversations/c1", retry="never")
    error = info.value
    assert type(error) is cls
    assert isinstance(error, TACError)
    assert (error.status, error.code, error.message) == (status, code, "Nope")
    assert error.more_info == f"https://www.twilio.com/docs/errors/{code}"
    assert error.method == "GET"
    assert error.url == "https://conversations.twilio.com/v2/Conversations/c1"
    assert error.details["code"] == code
    assert str(error) == f"GET /v2/Conversations/c1 -> {status} (Twilio error {code}): Nope"


async def test_error_string_has_no_secret_or_query(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(401, json=error_body(401, 20003, "Auth")))
    with pytest.raises(AuthenticationError) as info:
        await http.request("memory", "GET", "/v1/x", params={"phone": "+15550100"})
    text = str(info.value) + repr(info.value)
    assert "s3cret-value" not in text
    assert "SKtestkey" not in text
    assert "+15550100" not in text


async def test_conflict_exposes_conflicting_resource_id(make_http: MakeHTTP) -> None:
    http, _ = make_http(
        lambda r: httpx.Response(
            409,
            json=error_body(409, 20409, "exists"),
            headers={"X-Conflicting-Resource-Id": CONV, "Twilio-Request-Id": "RQ1"},
        )
    )
    with pytest.raises(ConflictError) as info:
        await http.request("conversations", "POST", "/v2/Conversations", json={})
    assert info.value.conflicting_resource_id == CONV
    assert info.value.request_id == "RQ1"


async def test_rate_limited_carries_retry_after(make_http: MakeHTTP) -> None:
    http, _ = make_http(
        lambda r: httpx.Response(
            429, json=error_body(429, 20429, "slow"), headers={"Retry-After": "2"}
        )
    )
    with pytest.raises(RateLimitedError) as info:
        await http.request("memory", "GET", "/v1/x", retry="never")
    assert info.value.retry_after == 2.0


async def test_non_json_error_body_becomes_message(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(502, text="<html>Bad   gateway</html>"))
    with pytest.raises(ServerError) as info:
        await http.request("api", "GET", "/x", retry="never")
    assert info.value.code is None
    assert info.value.message == "<html>Bad gateway</html>"
    assert info.value.details == "<html>Bad   gateway</html>"


async def test_2xx_non_json_is_invalid_response(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, text="not json"))
    with pytest.raises(InvalidResponseError) as info:
        await http.request_json("api", "GET", "/x")
    assert info.value.status == 200
    assert "not JSON" in str(info.value)


async def test_2xx_json_array_is_invalid_response(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json=[1, 2]))
    with pytest.raises(InvalidResponseError, match="not a JSON object"):
        await http.request_json("api", "GET", "/x")


async def test_2xx_with_wrong_shape_is_invalid_response(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json={"status": "ACTIVE"}))
    client = ConversationClient(http=http)
    with pytest.raises(InvalidResponseError, match="ConversationResponse shape: id"):
        await client.get_conversation(CONV)


# Transport errors ----------------------------------------------------------------------------


def raising(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "cls", "sent"),
    [
        (httpx.ConnectError("refused"), TwilioTransportError, False),
        (httpx.ConnectTimeout("connect"), TwilioTimeoutError, False),
        (httpx.PoolTimeout("pool"), TwilioTimeoutError, False),
        (httpx.ReadTimeout("read"), TwilioTimeoutError, True),
        (httpx.WriteTimeout("write"), TwilioTimeoutError, True),
        (httpx.RemoteProtocolError("dropped"), TwilioTransportError, True),
        (httpx.ReadError("reset"), TwilioTransportError, True),
    ],
)
async def test_transport_errors_are_translated(
    make_http: MakeHTTP, exc: Exception, cls: type[TwilioTransportError], sent: bool
) -> None:
    http, rec = make_http(raising(exc))
    with pytest.raises(TwilioTransportError) as info:
        await http.request("api", "GET", "/x", retry="never")
    assert type(info.value) is cls
    assert info.value.request_sent is sent
    assert isinstance(info.value.__cause__, httpx.HTTPError)
    assert "s3cret" not in str(info.value)
    assert len(rec.requests) == 1


# Retry modes ---------------------------------------------------------------------------------


def script(*steps: httpx.Response | Exception) -> Callable[[httpx.Request], httpx.Response]:
    """Answer with each step in turn (raising exceptions); repeat the last one."""
    remaining = list(steps)

    def handler(request: httpx.Request) -> httpx.Response:
        step = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(step, Exception):
            raise step
        return step

    return handler


async def test_send_message_read_timeout_is_not_retried(make_http: MakeHTTP) -> None:
    http, rec = make_http(script(httpx.ReadTimeout("read"), httpx.Response(202, json=ACTION)))
    client = ConversationClient(http=http)
    with pytest.raises(TwilioTransportError) as info:
        await client.send_message(CONV, reply())
    assert info.value.request_sent is True
    assert len(rec.requests) == 1
    assert rec.sleeps == []


async def test_send_message_connect_error_is_retried(make_http: MakeHTTP) -> None:
    http, rec = make_http(script(httpx.ConnectError("refused"), httpx.Response(202, json=ACTION)))
    client = ConversationClient(http=http)
    action = await client.send_message(CONV, reply())
    assert action.id == "conv_action_1"
    assert len(rec.requests) == 2
    assert rec.sleeps == [0.2]
    assert rec.requests[0].url.path == f"/v2/Conversations/{CONV}/Actions"
    assert rec.body() == {
        "type": "SEND_MESSAGE",
        "payload": {
            "from": {"participantId": "conv_participant_agent", "channel": "SMS"},
            "to": [{"participantId": "conv_participant_customer", "channel": "SMS"}],
            "content": {"text": "Hello!"},
        },
    }


async def test_send_message_503_with_retry_after_is_retried(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        script(
            httpx.Response(503, json=error_body(503, 20503, "busy"), headers={"Retry-After": "1"}),
            httpx.Response(202, json=ACTION),
        )
    )
    await ConversationClient(http=http).send_message(CONV, reply())
    assert len(rec.requests) == 2
    assert rec.sleeps == [1.0]


async def test_send_message_429_with_retry_after_is_retried(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        script(
            httpx.Response(429, headers={"Retry-After": "0.5"}), httpx.Response(202, json=ACTION)
        )
    )
    await ConversationClient(http=http).send_message(CONV, reply())
    assert rec.sleeps == [0.5]


@pytest.mark.parametrize(
    "first",
    [
        httpx.Response(500, json=error_body(500, 20500, "boom")),
        httpx.Response(503, json=error_body(503, 20503, "busy")),
        httpx.Response(429),
    ],
)
async def test_send_message_ambiguous_statuses_are_not_retried(
    make_http: MakeHTTP, first: httpx.Response
) -> None:
    http, rec = make_http(script(first, httpx.Response(202, json=ACTION)))
    with pytest.raises(TwilioAPIError):
        await ConversationClient(http=http).send_message(CONV, reply())
    assert len(rec.requests) == 1


async def test_send_message_non_202_success_logs_warning(
    make_http: MakeHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json=ACTION))
    with caplog.at_level("WARNING", logger="tac.context"):
        await ConversationClient(http=http).send_message(CONV, reply())
    assert "instead of 202" in caplog.text


async def test_safe_retries_500_then_succeeds(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        script(httpx.Response(500), httpx.Response(502), httpx.Response(200, json={"id": CONV}))
    )
    conversation = await ConversationClient(http=http).get_conversation(CONV)
    assert conversation.id == CONV
    assert len(rec.requests) == 3
    assert rec.sleeps == [0.2, 0.4]


async def test_safe_retries_read_timeout(make_http: MakeHTTP) -> None:
    http, rec = make_http(script(httpx.ReadTimeout("t"), httpx.Response(200, json={"id": CONV})))
    await ConversationClient(http=http).get_conversation(CONV)
    assert len(rec.requests) == 2


async def test_safe_gives_up_after_attempts(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(500))
    with pytest.raises(ServerError):
        await http.request("api", "GET", "/x")
    assert len(rec.requests) == 3
    assert len(rec.sleeps) == 2


async def test_safe_does_not_retry_client_errors(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(400, json=error_body(400, 20001, "bad")))
    with pytest.raises(TwilioAPIError):
        await http.request("api", "GET", "/x")
    assert len(rec.requests) == 1


async def test_retry_after_wins_over_backoff(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        script(httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200, json={}))
    )
    await http.request("api", "GET", "/x")
    assert rec.sleeps == [3.0]


async def test_retry_after_beyond_cap_raises_at_once(make_http: MakeHTTP) -> None:
    http, rec = make_http(
        lambda r: httpx.Response(429, headers={"Retry-After": "60"}),
        retry=RetryPolicy(max_retry_after=10.0),
    )
    with pytest.raises(RateLimitedError) as info:
        await http.request("api", "GET", "/x")
    assert info.value.retry_after == 60.0
    assert len(rec.requests) == 1
    assert rec.sleeps == []


async def test_never_mode_does_not_retry_connect_errors(make_http: MakeHTTP) -> None:
    http, rec = make_http(raising(httpx.ConnectError("refused")))
    with pytest.raises(TwilioTransportError):
        await http.request("api", "POST", "/x", retry="never")
    assert len(rec.requests) == 1


async def test_unknown_retry_mode_is_rejected(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200))
    with pytest.raises(ValueError, match="retry"):
        await http.request("api", "GET", "/x", retry="always")  # type: ignore[arg-type]


async def test_accept_returns_listed_status(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(301, headers={"Location": "/y"}))
    response = await http.request("api", "GET", "/x", accept={301})
    assert response.status_code == 301


# Client lifecycle ----------------------------------------------------------------------------


async def test_client_is_lazy_pooled_and_closed(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json={}))
    assert isinstance(http.sender, HttpxSender)
    assert http.sender._client is None
    await http.request("api", "GET", "/a")
    first = http.sender.client
    for _ in range(5):
        await http.request("memory", "GET", "/b")
    assert http.sender.client is first
    await http.aclose()
    assert first.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        await http.request("api", "GET", "/a")


async def test_given_client_is_used_and_never_closed() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.host)
        return httpx.Response(200, json={})

    shared = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with TwilioHTTP(api_key="SK1", api_secret="x", client=shared) as http:
        await http.request("knowledge", "GET", "/v2/x")
        assert isinstance(http.sender, HttpxSender)
        assert http.sender.client is shared
    assert not shared.is_closed
    assert calls == ["knowledge.twilio.com"]
    await shared.aclose()


def test_client_and_transport_are_exclusive() -> None:
    with pytest.raises(ValueError, match="client= or transport="):
        TwilioHTTP(
            api_key="SK1",
            api_secret="x",
            client=httpx.AsyncClient(),
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        )


async def test_product_client_from_credentials_owns_its_transport() -> None:
    client = ConversationClient("SK1", "secret", "conv_configuration_1", "ie1")
    assert client.base_url == "https://conversations.ie1.twilio.com"
    assert client.configuration_id == "conv_configuration_1"
    assert isinstance(client.http.sender, AiohttpSender)
    await client.aclose()
    assert client.http.closed


async def test_product_client_leaves_shared_transport_open(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json={}))
    async with ConversationClient(http=http):
        pass
    assert not http.closed


def test_product_client_needs_credentials_or_http() -> None:
    with pytest.raises(ValueError, match="api_key and api_secret"):
        ConversationClient()


# Pagination ----------------------------------------------------------------------------------


def paged(key: str, pages: list[list[dict[str, Any]]]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("pageToken")
        index = 0 if token is None else int(token.removeprefix("t"))
        meta: dict[str, Any] = {"key": key, "pageSize": len(pages[index])}
        if index + 1 < len(pages):
            meta["nextToken"] = f"t{index + 1}"
        return httpx.Response(200, json={key: pages[index], "meta": meta})

    return handler


async def test_list_conversations_follows_three_pages(make_http: MakeHTTP) -> None:
    pages = [[{"id": "c1"}, {"id": "c2"}], [{"id": "c3"}], [{"id": "c4"}]]
    http, rec = make_http(paged("conversations", pages))
    found = await ConversationClient(http=http).list_conversations(
        status=["active", "INACTIVE"], channel_id="CA1", page_size=2
    )
    assert [c.id for c in found] == ["c1", "c2", "c3", "c4"]
    assert len(rec.requests) == 3
    first, second, third = (r.url.params for r in rec.requests)
    assert first.get_list("status") == ["ACTIVE", "INACTIVE"]
    assert first["channelId"] == "CA1"
    assert first["pageSize"] == "2"
    assert "pageToken" not in first
    assert (second["pageToken"], third["pageToken"]) == ("t1", "t2")


async def test_list_conversations_rejects_unknown_status(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json={}))
    with pytest.raises(ValueError, match="status"):
        await ConversationClient(http=http).list_conversations(status="OPEN")


async def test_paginate_stops_at_max_pages(
    make_http: MakeHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    http, rec = make_http(paged("items", [[{"n": i}] for i in range(10)]))
    with caplog.at_level("WARNING", logger="tac.context"):
        pages = [page async for page in http.paginate("api", "/items", max_pages=3)]
    assert len(pages) == 3
    assert len(rec.requests) == 3
    assert "max_pages" in caplog.text


async def test_paginate_stops_on_repeated_token(make_http: MakeHTTP) -> None:
    http, rec = make_http(lambda r: httpx.Response(200, json={"meta": {"nextToken": "same"}}))
    pages = [page async for page in http.paginate("api", "/items")]
    assert len(pages) == 2
    assert len(rec.requests) == 2


async def test_list_communications_stops_at_limit(make_http: MakeHTTP) -> None:
    comm = {"author": {"address": "+1", "channel": "SMS"}, "content": {"text": "hi"}}
    pages = [[dict(comm, id=f"m{i}{j}") for j in range(2)] for i in range(5)]
    http, rec = make_http(paged("communications", pages))
    found = await ConversationClient(http=http).list_communications(
        CONV, channel_id="SM1", page_size=2, limit=3
    )
    assert [c.id for c in found] == ["m00", "m01", "m10"]
    assert len(rec.requests) == 2
    assert rec.requests[0].url.params["channelId"] == "SM1"


async def test_list_participants_raises_instead_of_swallowing(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(404, json=error_body(404, 20404, "gone")))
    with pytest.raises(NotFoundError):
        await ConversationClient(http=http).list_participants(CONV)


async def test_list_participants_all_pages(make_http: MakeHTTP) -> None:
    pages = [[{"id": "p1", "addresses": None}], [{"id": "p2", "type": "CUSTOMER"}]]
    http, _ = make_http(paged("participants", pages))
    found = await ConversationClient(http=http).list_participants(CONV)
    assert [(p.id, p.addresses) for p in found] == [("p1", []), ("p2", [])]


async def test_page_with_bad_item_is_invalid_response(make_http: MakeHTTP) -> None:
    http, _ = make_http(lambda r: httpx.Response(200, json={"participants": [{"name": "x"}]}))
    with pytest.raises(InvalidResponseError, match="Participant"):
        await ConversationClient(http=http).list_participants(CONV)
