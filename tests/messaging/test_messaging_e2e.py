"""Messaging end to end: simulated customers → sandbox Orchestrator → signed webhooks → app.

Every test runs a fresh sandbox and a real TACFastAPIServer on loopback; nothing of ours is
mocked. Twilio-side effects are read back from the sandbox (messages, request records).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from messaging_helpers import eventually
from tests._ports import free_port
from twilio.request_validator import RequestValidator

from tac.channels import ChatChannel, RCSChannel, SMSChannel, WhatsAppChannel
from tac.channels.messaging import MessagingChannel
from tac.context.errors import TwilioAPIError
from tac.models.outbound import (
    InitiateChatConversationOptions,
    InitiateMessagingConversationOptions,
)
from tac.models.session import ConversationSession

pytestmark = pytest.mark.integration

SRC = str(Path(__file__).resolve().parents[2] / "src")

CHANNELS: dict[str, type[MessagingChannel]] = {
    "sms": SMSChannel,
    "whatsapp": WhatsAppChannel,
    "rcs": RCSChannel,
    "chat": ChatChannel,
}


async def signed_post(app: Any, body: bytes, token: str = "tok-1") -> httpx.Response:
    """POST ``body`` to the app's /webhook, signed as Twilio signs JSON webhooks."""
    url = f"{app.url}/webhook?bodySHA256={hashlib.sha256(body).hexdigest()}"
    signature = RequestValidator(app.tac.config.auth_token).compute_signature(url, {})
    headers = {
        "X-Twilio-Signature": signature,
        "I-Twilio-Idempotency-Token": token,
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient() as http:
        return await http.post(url, content=body, headers=headers)


class Agent:
    """A scripted agent: records every turn, answers ``echo: <message>``."""

    def __init__(self, answer: Callable[[str], str | None] | None = None) -> None:
        self.turns: list[tuple[str, ConversationSession, Any]] = []
        self.answer = answer or (lambda message: f"echo: {message}")

    async def __call__(self, message: str, session: ConversationSession, memory: Any) -> Any:
        self.turns.append((message, session.model_copy(deep=True), memory))
        return self.answer(message)


@pytest.mark.parametrize("name", list(CHANNELS))
async def test_each_channel_answers_on_the_same_channel(start_app, name: str) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [cls(tac) for cls in CHANNELS.values()], reply=agent)
    customer = app.sandbox.customer(name)
    assert (await customer.ask("first", timeout=5)).text == "echo: first"
    assert (await customer.ask("second", timeout=5)).text == "echo: second"
    assert [m for m, _, _ in agent.turns] == ["first", "second"]
    session = agent.turns[-1][1]
    assert session.channel == name
    assert session.conversation_id == customer.conversation_id
    assert session.author_info is not None
    assert session.author_info.address == customer.address
    assert session.ai_agent_info is not None
    assert session.ai_agent_info.address == app.channel(name).agent_address
    assert session.metadata["channel_id"]
    assert app.errors == []


async def test_own_replies_never_reach_the_callback(start_app) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent)
    customer = app.sandbox.customer("sms")
    for text in ("one", "two", "three"):
        await customer.ask(text, timeout=5)
    await app.sandbox.client.webhooks_idle(5)
    created = await app.sandbox.client.deliveries(event_type="COMMUNICATION_CREATED")
    assert len(created) == 6  # three from the customer, three replies by the agent
    assert [m for m, _, _ in agent.turns] == ["one", "two", "three"]


async def test_later_turns_make_no_twilio_request_before_the_callback(start_app) -> None:
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=Agent())
    customer = app.sandbox.customer("sms")
    await customer.ask("first", timeout=5)
    await app.sandbox.client.webhooks_idle(5)
    await app.sandbox.client.request("DELETE", "/sandbox/requests")
    await customer.ask("second", timeout=5)
    await app.sandbox.client.webhooks_idle(5)
    made = [(r["method"], r["path"]) for r in await app.sandbox.client.requests()]
    assert len(made) == 1, made
    assert made[0][0] == "POST"
    assert made[0][1].endswith("/Actions")


async def test_duplicate_deliveries_give_one_reply(start_app) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent)
    await app.sandbox.client.set_webhook_faults(duplicate_rate=1.0)
    customer = app.sandbox.customer("sms")
    await customer.ask("hello", timeout=5)
    await customer.ask("again", timeout=5)
    await app.sandbox.client.webhooks_idle(5)
    duplicates = [
        d
        for d in await app.sandbox.client.deliveries(event_type="COMMUNICATION_CREATED")
        if d.get("duplicate")
    ]
    assert duplicates, "the sandbox should have redelivered events"
    assert [m for m, _, _ in agent.turns] == ["hello", "again"]
    messages = await app.sandbox.client.messages(customer.conversation_id)
    replies = [m for m in messages if m["author"]["address"] != customer.address]
    assert [m["content"]["text"] for m in replies] == ["echo: hello", "echo: again"]


async def test_forged_signature_is_refused_without_a_turn(start_app) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent)
    body = json.dumps(
        {
            "eventType": "COMMUNICATION_CREATED",
            "data": {
                "id": "comms_communication_1",
                "conversationId": "conv_conversation_1",
                "author": {"address": "+14155550100", "channel": "SMS"},
                "content": {"type": "TEXT", "text": "hi"},
            },
        }
    ).encode()
    async with httpx.AsyncClient() as http:
        forged = await http.post(
            f"{app.url}/webhook?bodySHA256={hashlib.sha256(body).hexdigest()}",
            content=body,
            headers={"X-Twilio-Signature": "Zm9yZ2Vk", "Content-Type": "application/json"},
        )
        unsigned = await http.post(f"{app.url}/webhook", content=body)
    assert forged.status_code == 403
    assert unsigned.status_code == 403
    assert agent.turns == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 400),
        (b'"text"', 400),
        (b'{"eventType": "COMMUNICATION_CREATED", "data": []}', 400),
        (b'{"eventType": "COMMUNICATION_CREATED", "data": {"id": "c"}}', 400),
        (b'{"eventType": "CONVERSATION_UPDATED", "data": {"status": "CLOSED"}}', 400),
        (b'{"eventType": "SOMETHING_NEW", "data": {"x": 1}}', 200),
        (b'{"data": {}}', 200),
        (b"{}", 200),
        (
            b'{"eventType": "COMMUNICATION_CREATED", "data": {"id": "c", "conversationId": "x",'
            b' "author": {"address": "+1415", "channel": "VOICE"}, "content": {"text": "hi"}}}',
            200,
        ),
        (b'{"eventType": "CONVERSATION_UPDATED", "data": {"id": "conv_x", "status": "X"}}', 200),
    ],
)
async def test_malformed_payloads_never_get_a_5xx(start_app, body: bytes, status: int) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent)
    response = await signed_post(app, body)
    assert response.status_code == status, response.text
    await asyncio.sleep(0.05)
    assert agent.turns == []


async def test_callback_error_goes_to_on_error_and_the_server_stays_up(start_app) -> None:
    def answer(message: str) -> str:
        if message == "boom":
            raise RuntimeError("agent failed")
        return f"echo: {message}"

    app = await start_app(lambda tac: [SMSChannel(tac)], reply=Agent(answer))
    customer = app.sandbox.customer("sms")
    await customer.send("boom")
    await eventually(lambda: app.errors)
    exc, context = app.errors[0]
    assert isinstance(exc, RuntimeError)
    assert context["conversation_id"] == customer.conversation_id
    assert context["channel"] == "sms"
    assert context["callback"] == "on_message_ready"
    assert (await customer.ask("still there?", timeout=5)).text == "echo: still there?"


async def test_app_sends_itself_when_the_callback_returns_none(start_app) -> None:
    holder: dict[str, MessagingChannel] = {}

    async def reply(message: str, session: ConversationSession, memory: Any) -> None:
        await holder["sms"].send_response(session.conversation_id, f"sent: {message}")

    app = await start_app(lambda tac: [SMSChannel(tac)], reply=reply)
    holder["sms"] = app.channel("sms")
    customer = app.sandbox.customer("sms")
    assert (await customer.ask("hi", timeout=5)).text == "sent: hi"
    await app.sandbox.client.webhooks_idle(5)
    actions = await app.sandbox.client.requests(product="conversations")
    assert sum(1 for r in actions if r["path"].endswith("/Actions")) == 1


async def test_ambiguous_reply_failure_is_not_retried_and_is_reported(start_app) -> None:
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=Agent())
    customer = app.sandbox.customer("sms")
    await customer.ask("warm up", timeout=5)
    await app.sandbox.client.webhooks_idle(5)
    await app.sandbox.client.request("DELETE", "/sandbox/requests")
    await app.sandbox.client.set_fault("conversations", error_rate=1.0, error_status=500)
    await customer.send("are you there?")
    await eventually(lambda: app.errors)
    exc, context = app.errors[0]
    assert isinstance(exc, TwilioAPIError)
    assert exc.status == 500
    assert context["reply_uncertain"] is True
    assert context["conversation_id"] == customer.conversation_id
    sent = [r for r in await app.sandbox.client.requests() if r["path"].endswith("/Actions")]
    assert len(sent) == 1, "an ambiguous failure must not be retried"


async def test_surely_unsent_failure_is_reported_as_certain(start_app) -> None:
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=Agent())
    customer = app.sandbox.customer("sms")
    await customer.ask("warm up", timeout=5)
    await app.sandbox.client.webhooks_idle(5)
    await app.sandbox.client.set_fault("conversations", error_rate=1.0, error_status=400)
    await customer.send("hello")
    await eventually(lambda: app.errors)
    exc, context = app.errors[0]
    assert isinstance(exc, TwilioAPIError)
    assert context["reply_uncertain"] is False


async def test_closed_conversation_ends_the_session_once(start_app) -> None:
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=Agent())
    customer = app.sandbox.customer("sms")
    await customer.ask("hi", timeout=5)
    assert await app.tac.session_store.session_count() == 1
    client = app.tac.conversation_orchestrator_client
    assert client is not None
    assert customer.conversation_id is not None
    await client.update_conversation(customer.conversation_id, "CLOSED")
    await eventually(lambda: app.ended)
    await app.sandbox.client.webhooks_idle(5)
    assert app.ended == [customer.conversation_id]
    assert await app.tac.session_store.session_count() == 0


@pytest.fixture
def ram_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder in memory-backed storage when there is one (the sandbox's SQLite goes there)."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def test_thousand_conversations_opened_and_closed_leave_no_session(
    start_app, ram_folder: Path
) -> None:
    agent = Agent(lambda message: None)
    folder = ram_folder
    app = await start_app(
        lambda tac: [SMSChannel(tac)],
        reply=agent,
        subprocess=True,  # the sandbox on its own core, its database in memory-backed files
        sandbox_settings={"db": str(folder / "sandbox.db")},
    )
    client = app.tac.conversation_orchestrator_client
    assert client is not None
    count, wave = 1000, 100
    opened: list[str] = []

    async def open_one(index: int) -> str:
        result = await app.sandbox.client.customer_send(
            "sms", f"hello {index}", f"+1415{index:07d}"
        )
        return str(result["conversationId"])

    for start in range(0, count, wave):
        ids = await asyncio.gather(*(open_one(i) for i in range(start, start + wave)))
        opened.extend(ids)
        await eventually(lambda: len(agent.turns) == len(opened), timeout=30)
        assert await app.tac.session_store.session_count() == wave
        await asyncio.gather(*(client.update_conversation(c, "CLOSED") for c in ids))
        await eventually(lambda: len(app.ended) == len(opened), timeout=30)
    assert len(set(opened)) == count
    assert await app.tac.session_store.session_count() == 0
    assert sorted(app.ended) == sorted(opened)
    assert app.errors == []


async def test_outbound_sms_starts_a_conversation_the_customer_answers(start_app) -> None:
    agent = Agent()
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=agent)
    customer = app.sandbox.customer("sms")
    result = await app.channel("sms").initiate_outbound_conversation(
        InitiateMessagingConversationOptions(
            to=customer.address, message="Your order shipped", metadata={"order": "42"}
        )
    )
    assert result.session.metadata["direction"] == "outbound"
    assert result.session.metadata["order"] == "42"
    first = await customer.next_reply(timeout=5)
    assert first.text == "Your order shipped"
    assert first.conversation_id == result.conversation_id
    assert (await customer.ask("thanks", timeout=5)).text == "echo: thanks"
    assert agent.turns[0][1].conversation_id == result.conversation_id
    assert agent.turns[0][1].metadata["order"] == "42"


async def test_outbound_chat_uses_the_channel_id(start_app) -> None:
    app = await start_app(lambda tac: [ChatChannel(tac)], reply=Agent())
    result = await app.channel("chat").initiate_outbound_conversation(
        InitiateChatConversationOptions(to="visitor-7", message="Welcome!", channel_id="CH123")
    )
    messages = await app.sandbox.client.messages(result.conversation_id)
    assert [m["content"]["text"] for m in messages] == ["Welcome!"]
    assert messages[0]["channelId"] == "CH123"


async def test_outbound_failure_raises_and_leaves_no_session(start_app) -> None:
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=Agent())
    await app.sandbox.client.set_fault("conversations", error_rate=1.0, error_status=400)
    with pytest.raises(TwilioAPIError):
        await app.channel("sms").initiate_outbound_conversation(
            {"to": "+14155550100", "message": "hi"}
        )
    assert await app.tac.session_store.session_count() == 0


async def test_try_it_from_a_terminal(start_app) -> None:
    """`opentac sandbox chat --channel sms` talks to the running agent (issue 5, "Try it")."""
    app = await start_app(lambda tac: [SMSChannel(tac)], reply=Agent())
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "TWILIO_API_KEY": app.sandbox.env["TWILIO_API_KEY"],
        "TWILIO_API_SECRET": app.sandbox.env["TWILIO_API_SECRET"],
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tac",
        "sandbox",
        "chat",
        "--channel",
        "sms",
        "--url",
        app.sandbox.url,
        "--env-file",
        "/nonexistent/.env",
        "--reply-timeout",
        "10",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(b"hello there\n"), timeout=60)
    assert process.returncode == 0, err.decode()
    assert "agent> echo: hello there" in out.decode()


async def test_shutdown_lets_a_turn_in_progress_finish() -> None:
    from tac import TAC, TACConfig
    from tac.sandbox import Sandbox, serve_app
    from tac.server import TACFastAPIServer, TACServerConfig

    port = free_port()
    async with Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox:
        tac = TAC(TACConfig.from_env(sandbox.env))
        started = asyncio.Event()

        @tac.on_message_ready
        async def slow(message: str, session: ConversationSession, memory: Any) -> str:
            started.set()
            await asyncio.sleep(0.5)
            return f"late: {message}"

        server = TACFastAPIServer(
            tac=tac,
            messaging_channels=[SMSChannel(tac)],
            config=TACServerConfig(host="127.0.0.1", port=port, shutdown_grace_period=10),
        )
        customer = sandbox.customer("sms")
        async with serve_app(server.app, port=port):
            await customer.send("before closing")
            await asyncio.wait_for(started.wait(), 5)
        # the server has shut down: the turn in progress finished and its reply went out
        assert customer.conversation_id is not None
        messages = await sandbox.client.messages(customer.conversation_id)
        assert [m["content"]["text"] for m in messages] == [
            "before closing",
            "late: before closing",
        ]
        assert len(server.tasks) == 0
