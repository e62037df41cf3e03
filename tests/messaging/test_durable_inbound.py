"""Accepted webhooks are neither lost nor doubled: replays, a stopped instance, Redis away,
drain, probes, and CLOSED during a first turn (CONTRACT: Webhooks and delivery)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from messaging_helpers import eventually
from test_messaging_e2e import Agent, signed_post
from tests._ports import free_port
from tests._redis import REDIS_URL, redis_listening

from tac import TAC, TACConfig
from tac.channels import SMSChannel
from tac.models.session import ConversationSession
from tac.server import TACFastAPIServer, TACServerConfig
from tac.state import InMemorySessionStore, SessionStore

pytestmark = pytest.mark.integration

needs_redis = pytest.mark.skipif(
    not redis_listening(), reason="no Redis on 127.0.0.1:6379 (make test starts one)"
)


def _redis_store(prefix: str) -> Any:
    from tac.state.redis import RedisSessionStore

    return RedisSessionStore.from_url(REDIS_URL, prefix=prefix)


@pytest_asyncio.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        yield InMemorySessionStore()
        return
    if not redis_listening():
        pytest.skip("no Redis on 127.0.0.1:6379 (make test starts one)")
    redis_store = _redis_store(f"tac-inbound-{uuid.uuid4().hex}:")
    yield redis_store
    await redis_store.aclose()


def _message(conversation_id: str, session: ConversationSession, text: str, ident: str) -> bytes:
    assert session.author_info is not None
    data = {
        "id": ident,
        "conversationId": conversation_id,
        "author": {
            "address": session.author_info.address,
            "channel": "SMS",
            "participantId": session.author_info.participant_id,
        },
        "content": {"type": "TEXT", "text": text},
    }
    return json.dumps({"eventType": "COMMUNICATION_CREATED", "data": data}).encode()


async def test_a_replayed_body_with_fresh_tokens_is_answered_once(start_app, store) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent, session_store=store)
    customer = app.sandbox.customer("sms")
    await customer.ask("hello", timeout=5)
    session = await store.get_session(customer.conversation_id)
    assert session is not None
    body = _message(customer.conversation_id, session, "captured", "comms_replayed_1")
    answers = [(await signed_post(app, body, token=f"fresh-{n}")).json() for n in range(5)]
    assert answers[0] == {"status": "ok"}
    assert answers[1:] == [{"status": "duplicate"}] * 4
    assert (await customer.next_reply(timeout=5)).text == "echo: captured"
    await app.sandbox.client.webhooks_idle(5)
    assert [m for m, _, _ in agent.turns] == ["hello", "captured"]
    with pytest.raises(TimeoutError):
        await customer.next_reply(timeout=0.3)


async def test_closed_during_the_first_turn_ends_the_session_right_after(start_app, store) -> None:
    release = asyncio.Event()
    ended: list[str] = []

    async def agent(message: str, session: ConversationSession, memory: Any) -> str:
        await release.wait()
        return "late answer"

    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent, session_store=store)
    app.tac.on_conversation_ended(lambda session: ended.append(session.conversation_id))
    customer = app.sandbox.customer("sms")
    await customer.send("hello")
    conversation_id = customer.conversation_id
    assert conversation_id is not None
    closed = json.dumps(
        {
            "eventType": "CONVERSATION_UPDATED",
            "data": {
                "id": conversation_id,
                "configurationId": app.tac.config.conversation_configuration_id,
                "status": "CLOSED",
                "updatedAt": "2026-01-01T00:00:00Z",
            },
        }
    ).encode()
    # CLOSED may land before the first turn stored its session, or after: both end it once.
    assert (await signed_post(app, closed, token="closed-1")).status_code == 200
    release.set()
    await eventually(lambda: ended == [conversation_id])
    assert await store.get_session(conversation_id) is None
    await app.sandbox.client.webhooks_idle(5)
    await asyncio.sleep(0.2)
    assert ended == [conversation_id]


async def test_store_unreachable_answers_503_with_one_warning(start_app, caplog) -> None:
    from tac.state.redis import RedisSessionStore

    nowhere = RedisSessionStore.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix="x:")
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=Agent(), session_store=nowhere)
    body = json.dumps(
        {
            "eventType": "COMMUNICATION_CREATED",
            "data": {
                "id": "comms_1",
                "conversationId": "conv_1",
                "author": {"address": "+14155550100", "channel": "SMS"},
                "content": {"type": "TEXT", "text": "hi"},
            },
        }
    ).encode()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        response = await signed_post(app, body, token="down-1")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    ours = [r for r in caplog.records if r.name.startswith("tac")]
    assert len(ours) == 1, [r.getMessage() for r in ours]
    assert ours[0].levelno == logging.WARNING
    assert ours[0].exc_info is None
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{app.url}/healthz")).status_code == 200
        ready = await http.get(f"{app.url}/readyz")
    assert ready.status_code == 503


async def test_probes_and_drain(start_app) -> None:
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=Agent())
    customer = app.sandbox.customer("sms")
    await customer.ask("hello", timeout=5)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{app.url}/healthz")).json() == {"status": "ok"}
        assert (await http.get(f"{app.url}/readyz")).status_code == 200
        app.server.begin_drain()
        assert (await http.get(f"{app.url}/readyz")).status_code == 503
        assert (await http.get(f"{app.url}/healthz")).status_code == 200
    session = await app.tac.get_session(customer.conversation_id)
    assert session is not None
    body = _message(customer.conversation_id, session, "during drain", "comms_drain_1")
    response = await signed_post(app, body, token="drain-1")
    assert response.status_code == 503  # answered, not refused: Twilio retries elsewhere


def test_probe_paths_are_configurable() -> None:
    tac = TAC(
        TACConfig(
            account_sid="AC" + "0" * 32,
            auth_token="t",
            api_key="SK" + "0" * 32,
            api_secret="s",
            phone_number="+15005550006",
        )
    )
    server = TACFastAPIServer(tac, config=TACServerConfig(health_path="/live", ready_path=None))
    paths = {getattr(route, "path", None) for route in server.app.router.routes}
    assert "/live" in paths
    assert "/healthz" not in paths
    assert "/readyz" not in paths


async def _stop_and_take_over(app: Any, prefix: str) -> tuple[TACFastAPIServer, list[str]]:
    """Instance A stops renewing its leases; B on the same Redis takes its event over."""
    await app.server.inbound.aclose()
    tac_b = TAC(TACConfig.from_env(app.sandbox.env), session_store=_redis_store(prefix))
    answered: list[str] = []

    @tac_b.on_message_ready
    async def agent_b(message: str, session: ConversationSession, memory: Any) -> str:
        answered.append(message)
        return f"B: {message}"

    server_b = TACFastAPIServer(
        tac_b,
        messaging_channels=[SMSChannel(tac_b)],
        config=TACServerConfig(idempotency_lease_seconds=0.5),
    )
    taken = 0
    for _ in range(200):  # A's 5 s lease runs out; B looks every 0.1 s
        taken += await server_b.inbound.tick()
        if taken:
            break
        await asyncio.sleep(0.1)
    assert taken == 1
    return server_b, answered


@needs_redis
async def test_a_stopped_instances_turn_is_taken_over_and_answered_once(start_app) -> None:
    """Instance A accepts a message and stops (its turn hangs, its leases are no longer
    renewed); instance B on the same Redis takes the event over and answers it once."""
    prefix = f"tac-takeover-{uuid.uuid4().hex}:"
    hung = asyncio.Event()

    async def stuck(message: str, session: ConversationSession, memory: Any) -> str:
        if message == "hello":
            return "first"
        hung.set()
        await asyncio.Event().wait()  # never returns: this instance is "dead"
        return "never"

    app = await start_app(
        lambda tac: [SMSChannel(tac)], reply=stuck, session_store=_redis_store(prefix)
    )
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("hello", timeout=5)).text == "first"
    await customer.send("are you there?")
    await asyncio.wait_for(hung.wait(), 5)
    # A stops renewing (as if its process had died); B takes the event over
    server_b, answered = await _stop_and_take_over(app, prefix)
    try:
        assert (await customer.next_reply(timeout=5)).text == "B: are you there?"
        await eventually(lambda: len(server_b.tasks) == 0)
        await server_b.inbound.flush()
        assert await server_b.inbound.tick() == 0  # done: nobody takes it again
        assert answered == ["are you there?"]
        with pytest.raises(TimeoutError):
            await customer.next_reply(timeout=0.3)
    finally:
        await server_b.shutdown()


@needs_redis
async def test_an_event_taken_over_after_its_send_was_recorded_is_not_sent_again(
    start_app,
) -> None:
    """The send was recorded, then the instance stopped: the send may have happened, so the
    event is never answered again and ``on_error`` hears ``reply_uncertain=True``."""
    from tac.state.inbound import InboundEvent

    prefix = f"tac-sending-{uuid.uuid4().hex}:"
    app = await start_app(
        lambda tac: [SMSChannel(tac)], reply=Agent(), session_store=_redis_store(prefix)
    )
    customer = app.sandbox.customer("sms")
    await customer.ask("hello", timeout=5)
    session = await app.tac.get_session(customer.conversation_id)
    assert session is not None
    body = _message(customer.conversation_id, session, "in flight", "comms_sending_1")

    dead = _redis_store(prefix)  # the instance that stops right after recording the send
    event = InboundEvent(
        keys=("event:COMMUNICATION_CREATED:comms_sending_1", "t-dead:COMMUNICATION_CREATED"),
        body=body.decode(),
        token="t-dead",
        conversation_id=customer.conversation_id,
    )
    await dead.inbound.accept(event, 0.2)
    assert await dead.inbound.before_send(event, session, 60)
    await dead.aclose()

    app.server.inbound.lease_seconds = 0.2
    taken = 0
    for _ in range(100):
        taken += await app.server.inbound.tick()
        if taken:
            break
        await asyncio.sleep(0.05)
    assert taken == 1
    await eventually(lambda: any(c.get("reply_uncertain") for _, c in app.errors), timeout=15)
    (_exc, context), *_ = [(e, c) for e, c in app.errors if c.get("reply_uncertain")]
    assert context["conversation_id"] == customer.conversation_id
    with pytest.raises(TimeoutError):
        await customer.next_reply(timeout=0.5)
    # a redelivery of the same event is a duplicate
    assert (await signed_post(app, body, token="t-dead")).json() == {"status": "duplicate"}


@needs_redis
async def test_stopped_after_recording_the_send_and_before_it_the_reply_is_sent_once(
    start_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A records the send and stops before the Actions request: B sees no reply after the
    message in the conversation, so it answers it (once), and nobody hears reply_uncertain."""
    from tac.core.inbound import InboundDelivery

    prefix = f"tac-unsent-{uuid.uuid4().hex}:"
    recorded = asyncio.Event()
    app = await start_app(
        lambda tac: [SMSChannel(tac)], reply=Agent(), session_store=_redis_store(prefix)
    )
    original = InboundDelivery.before_send

    async def stops_after_recording(self: InboundDelivery, session: ConversationSession) -> bool:
        ok = await original(self, session)
        if ok and self.inbound is app.server.inbound and not recorded.is_set():
            recorded.set()
            await asyncio.Event().wait()  # A "dies" here: the request never leaves
        return ok

    customer = app.sandbox.customer("sms")
    await customer.ask("hello", timeout=5)
    monkeypatch.setattr(InboundDelivery, "before_send", stops_after_recording)
    await customer.send("still there?")
    await asyncio.wait_for(recorded.wait(), 5)
    server_b, answered = await _stop_and_take_over(app, prefix)
    try:
        assert (await customer.next_reply(timeout=12)).text == "B: still there?"
        assert answered == ["still there?"]
        await eventually(lambda: len(server_b.tasks) == 0)
        await server_b.inbound.flush()
        assert await server_b.inbound.tick() == 0
        with pytest.raises(TimeoutError):
            await customer.next_reply(timeout=0.3)
        assert not [c for _, c in app.errors if c.get("reply_uncertain")]
    finally:
        await server_b.shutdown()


@needs_redis
async def test_stopped_after_the_reply_went_out_it_is_not_sent_again(
    start_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sends the reply and stops before marking the event done: B finds the reply in the
    conversation and neither answers again nor reports an uncertain reply."""
    from tac.core.inbound import InboundDelivery

    prefix = f"tac-sent-{uuid.uuid4().hex}:"
    stopped = asyncio.Event()
    app = await start_app(
        lambda tac: [SMSChannel(tac)], reply=Agent(), session_store=_redis_store(prefix)
    )
    original = InboundDelivery.finish

    async def stops_before_done(
        self: InboundDelivery, session: ConversationSession | None, *, saved: bool
    ) -> None:
        if self.inbound is app.server.inbound and "anyone?" in self.event.body:
            stopped.set()
            await asyncio.Event().wait()  # A "dies" after sending
        await original(self, session, saved=saved)

    customer = app.sandbox.customer("sms")
    await customer.ask("hello", timeout=5)
    monkeypatch.setattr(InboundDelivery, "finish", stops_before_done)
    reply = await customer.ask("anyone?", timeout=5)
    await asyncio.wait_for(stopped.wait(), 5)
    server_b, answered = await _stop_and_take_over(app, prefix)
    try:
        await eventually(lambda: len(server_b.tasks) == 0, timeout=15)
        await server_b.inbound.flush()
        assert await server_b.inbound.tick() == 0
        assert answered == []
        with pytest.raises(TimeoutError):
            await customer.next_reply(timeout=0.5)
        assert reply.text
        assert not [c for _, c in app.errors if c.get("reply_uncertain")]
    finally:
        await server_b.shutdown()


async def test_sigterm_drains_answering_503_then_stops(start_app) -> None:
    """The first SIGTERM keeps the socket open: webhooks get 503 while the turn in progress
    finishes and its reply goes out; then the server stops (issue: refused at the socket)."""
    import contextlib
    import signal
    import socket
    from types import SimpleNamespace

    import uvicorn

    from tac.server.fastapi_server import _DrainingServer
    from tac_sandbox import Sandbox

    class Drainer(_DrainingServer):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:  # the test process keeps its own handlers
            yield

    entered, release = asyncio.Event(), asyncio.Event()

    async def agent(message: str, session: ConversationSession, memory: Any) -> str:
        entered.set()
        await release.wait()
        return f"done: {message}"

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    async with Sandbox.start(app_url=url) as sandbox:
        tac = TAC(TACConfig.from_env(sandbox.env))
        tac.on_message_ready(agent)
        server = TACFastAPIServer(tac, messaging_channels=[SMSChannel(tac)])
        drainer = Drainer(uvicorn.Config(server.app, log_level="warning"), server)
        serving = asyncio.get_running_loop().create_task(drainer.serve(sockets=[sock]))
        try:
            await eventually(lambda: drainer.started)
            customer = sandbox.customer("sms")
            await customer.send("slow")
            await asyncio.wait_for(entered.wait(), 5)
            drainer.handle_exit(signal.SIGTERM, None)
            await eventually(lambda: server.draining)
            body = json.dumps(
                {
                    "eventType": "COMMUNICATION_CREATED",
                    "data": {
                        "id": "comms_late_1",
                        "conversationId": customer.conversation_id,
                        "author": {"address": customer.address, "channel": "SMS"},
                        "content": {"type": "TEXT", "text": "late"},
                    },
                }
            ).encode()
            late = await signed_post(SimpleNamespace(url=url, tac=tac), body, token="late-1")
            assert late.status_code == 503
            assert not serving.done()
            release.set()
            assert (await customer.next_reply(timeout=5)).text == "done: slow"
            await asyncio.wait_for(serving, 10)
        finally:
            release.set()
            if not serving.done():
                drainer.should_exit = True
                await serving


@pytest.mark.parametrize("fast", [True, False])
async def test_the_webhook_fast_path_is_an_option(fast: bool) -> None:
    """Off, ``POST /webhook`` goes through the router: the app's exception handlers see its
    403s. On (the default, cheaper per message), the answer is the same but they do not."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from tac_sandbox import Sandbox, serve_app

    seen: list[int] = []
    user_app = FastAPI()

    @user_app.exception_handler(StarletteHTTPException)
    async def handler(request: Any, exc: StarletteHTTPException) -> JSONResponse:
        seen.append(exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with Sandbox.start(app_url=url) as sandbox:
        tac = TAC(TACConfig.from_env(sandbox.env))
        tac.on_message_ready(lambda message, session, memory: f"echo: {message}")
        server = TACFastAPIServer(
            tac=tac,
            messaging_channels=[SMSChannel(tac)],
            config=TACServerConfig(host="127.0.0.1", port=port, webhook_fast_path=fast),
            app=user_app,
        )
        async with serve_app(server.app, port=port), httpx.AsyncClient(base_url=url) as http:
            assert (await sandbox.customer("sms").ask("hi", timeout=5)).text == "echo: hi"
            forged = "A" * 27 + "="  # well-formed, wrong: the route's own check answers it
            unsigned = await http.post(
                "/webhook", content=b"{}", headers={"X-Twilio-Signature": forged}
            )
    assert unsigned.status_code == 403
    assert unsigned.json() == {"detail": "Invalid Twilio signature"}
    assert seen == ([] if fast else [403])
