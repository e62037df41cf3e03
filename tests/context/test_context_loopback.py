"""Real HTTP on loopback: a tiny Starlette app served by uvicorn plays Twilio."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tests._ports import free_port

from tac.context import (
    AuthenticationError,
    CallsClient,
    ConversationClient,
    MemoryClient,
    RetryPolicy,
    StudioClient,
    TwilioHTTP,
    TwilioTimeoutError,
    TwilioTransportError,
)
from tac.models.conversation import (
    ActionParticipantRef,
    ActionTextContent,
    SendMessageActionPayload,
    SendMessageActionRequest,
)
from tac.models.memory import MemoryRetrievalRequest

pytestmark = pytest.mark.integration

KEY, SECRET = "SKloopback", "loopback-secret"
AC = "AC11111111111111111111111111111111"
CONV = "conv_conversation_0ap7mmmd7f0vf68q9wsz9z3h6d"


@dataclass
class FakeTwilio:
    """What the fake saw: client ports, paths, bodies; ``release`` unblocks slow answers."""

    ports: list[int] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        expected = "Basic " + base64.b64encode(f"{KEY}:{SECRET}".encode()).decode()

        async def endpoint(request: Request) -> Response:
            assert request.client is not None
            self.ports.append(request.client.port)
            self.paths.append(request.url.path)
            self.bodies.append(await request.body())
            self.user_agents.append(request.headers.get("user-agent", ""))
            if request.headers.get("authorization") != expected:
                return JSONResponse(
                    {"code": 20003, "message": "Authenticate", "status": 401}, status_code=401
                )
            return await self.route(request)

        return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])

    async def route(self, request: Request) -> Response:
        path = request.url.path
        if path.endswith("/Actions"):
            if "/slow/" in path:
                await self.release.wait()
            return JSONResponse(
                {"id": "conv_action_1", "type": "action-send-message", "status": "PENDING"},
                status_code=202,
            )
        if path.startswith("/conversations/v2/Conversations/"):
            return JSONResponse({"id": path.rsplit("/", 1)[1], "status": "ACTIVE"})
        if path.endswith("/Recall"):
            return JSONResponse({"observations": [{"id": "o1", "content": "likes tea"}]})
        if path.endswith("/Calls.json"):
            fields = parse_qs((await request.body()).decode())
            return JSONResponse(
                {
                    "sid": "CA1",
                    "to": fields["To"][0],
                    "from": fields["From"][0],
                    "status": "queued",
                },
                status_code=201,
            )
        if path.endswith("/Executions"):
            return JSONResponse({"sid": "FN1", "status": "active"}, status_code=201)
        return JSONResponse({"code": 20404, "message": "Not Found", "status": 404}, 404)


@pytest.fixture
async def twilio() -> AsyncIterator[tuple[FakeTwilio, str]]:
    fake = FakeTwilio()
    config = uvicorn.Config(
        fake.app(), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        fake.release.set()
        server.should_exit = True
        await task


def reply() -> SendMessageActionRequest:
    return SendMessageActionRequest(
        payload=SendMessageActionPayload(
            from_=ActionParticipantRef(participant_id="agent", channel="SMS"),
            to=[ActionParticipantRef(participant_id="customer", channel="SMS")],
            content=ActionTextContent(text="Hello from loopback"),
        )
    )


async def test_end_to_end_over_real_http(twilio: tuple[FakeTwilio, str]) -> None:
    fake, base = twilio
    async with TwilioHTTP(
        api_key=KEY, api_secret=SECRET, account_sid=AC, api_base_url=base
    ) as http:
        conversations = ConversationClient(http=http)
        conversation = await conversations.get_conversation(CONV)
        action = await conversations.send_message(CONV, reply())
        memory = await MemoryClient("mem_store_1", http=http).retrieve_memory(
            "mem_profile_1", MemoryRetrievalRequest(query="tea")
        )
        call = await CallsClient(http=http).create_call("+14155550123", "+18005550100", url=base)
        execution = await StudioClient(http=http).create_execution(
            "FW1", to="+14155550123", from_="+18005550100", parameters={"a": 1}
        )
    assert conversation.id == CONV
    assert action.status == "PENDING"
    assert [o.content for o in memory.observations] == ["likes tea"]
    assert (call.sid, call.to, call.from_) == ("CA1", "+14155550123", "+18005550100")
    assert execution.sid == "FN1"
    assert fake.paths == [
        f"/conversations/v2/Conversations/{CONV}",
        f"/conversations/v2/Conversations/{CONV}/Actions",
        "/memory/v1/Stores/mem_store_1/Profiles/mem_profile_1/Recall",
        f"/api/2010-04-01/Accounts/{AC}/Calls.json",
        "/studio/v2/Flows/FW1/Executions",
    ]
    assert all(agent.startswith("opentac/") for agent in fake.user_agents)


async def test_one_pooled_connection_for_many_requests(twilio: tuple[FakeTwilio, str]) -> None:
    fake, base = twilio
    async with TwilioHTTP(api_key=KEY, api_secret=SECRET, api_base_url=base) as http:
        conversations = ConversationClient(http=http)
        memory = MemoryClient("mem_store_1", http=http)
        for index in range(20):
            if index % 2:
                await conversations.get_conversation(f"conv_{index}")
            else:
                await memory.retrieve_memory("mem_profile_1")
    assert len(fake.ports) == 20
    assert len(set(fake.ports)) == 1


async def test_wrong_credentials_raise_authentication_error(
    twilio: tuple[FakeTwilio, str],
) -> None:
    _, base = twilio
    async with TwilioHTTP(api_key=KEY, api_secret="wrong", api_base_url=base) as http:
        with pytest.raises(AuthenticationError) as info:
            await ConversationClient(http=http).get_conversation(CONV)
    assert info.value.code == 20003
    assert "wrong" not in str(info.value)


async def test_read_timeout_after_send_is_not_retried(twilio: tuple[FakeTwilio, str]) -> None:
    fake, base = twilio
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    async with TwilioHTTP(
        api_key=KEY,
        api_secret=SECRET,
        api_base_url=base,
        timeout=httpx.Timeout(5.0, read=0.3),
        sleep=sleep,
    ) as http:
        with pytest.raises(TwilioTimeoutError) as info:
            await ConversationClient(http=http).send_message("slow", reply())
    assert info.value.request_sent is True
    assert fake.paths == ["/conversations/v2/Conversations/slow/Actions"]
    assert b"Hello from loopback" in fake.bodies[0]
    assert sleeps == []


async def test_connection_refused_is_retried_then_raised() -> None:
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)

    async with TwilioHTTP(
        api_key=KEY,
        api_secret=SECRET,
        api_base_url=f"http://127.0.0.1:{free_port()}",
        retry=RetryPolicy(attempts=3, jitter="none"),
        sleep=sleep,
    ) as http:
        with pytest.raises(TwilioTransportError) as info:
            await ConversationClient(http=http).send_message(CONV, reply())
    assert info.value.request_sent is False
    assert sleeps == [0.2, 0.4]
