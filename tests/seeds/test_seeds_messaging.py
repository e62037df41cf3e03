"""Seeds 000 and 002, messaging snippets: run as written against the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

import seed_harness
from tac import TAC, TACConfig
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse
from tac.sandbox import Sandbox

pytestmark = pytest.mark.integration


@dataclass
class Env:
    sandbox: Sandbox
    env: dict[str, str]
    folder: Path


@pytest_asyncio.fixture
async def seed_env(tmp_path: Path) -> AsyncIterator[Env]:
    """A sandbox in its own process and the app environment `opentac sandbox --write-env`
    wrote for it."""
    app_url = f"http://127.0.0.1:{seed_harness.free_port()}"
    db = tmp_path / "sandbox.db"
    async with Sandbox.start(subprocess=True, db=str(db), app_url=app_url) as sandbox:
        env = seed_harness.write_env(db, app_url, sandbox.settings.port, tmp_path / ".env")
        yield Env(sandbox, env, tmp_path)


async def test_seed_000_overview_sms(seed_env: Env) -> None:
    pytest.importorskip("tac.channels.voice", reason="seed 000 needs the voice channel")
    with seed_harness.start_app(
        ["seed_000_overview"], seed_env.env, log=seed_env.folder / "app.log"
    ):
        customer = seed_env.sandbox.customer("sms")
        reply = await customer.ask("hello", timeout=15)
    assert reply.text == "llm: hello [memory: TACMemoryResponse]"


async def test_seed_002_sms_app_sends_the_response(seed_env: Env) -> None:
    with seed_harness.start_app(
        ["seed_002_sms_configure"],
        seed_env.env,
        provide_tac=True,
        register="handle_message_ready",
        serve=["sms_channel"],
        log=seed_env.folder / "app.log",
    ):
        customer = seed_env.sandbox.customer("sms")
        assert (await customer.ask("hello", timeout=15)).text == "generated: hello"
        assert (await customer.ask("again", timeout=15)).text == "generated: again"


async def test_seed_002_whatsapp_rcs_and_unified_callback(seed_env: Env) -> None:
    with seed_harness.start_app(
        [
            "seed_002_whatsapp_configure",
            "seed_002_rcs_configure",
            "seed_002_unified_callback",
            "seed_002_conversation_ended",
        ],
        seed_env.env,
        provide_tac=True,
        serve=["whatsapp_channel", "rcs_channel"],
        log=seed_env.folder / "app.log",
    ):
        whatsapp = seed_env.sandbox.customer("whatsapp")
        rcs = seed_env.sandbox.customer("rcs")
        assert (await whatsapp.ask("hola", timeout=15)).text == "generated: hola"
        assert (await rcs.ask("hi", timeout=15)).text == "generated: hi"


def _offline_tac() -> TAC:
    return TAC(
        TACConfig(
            account_sid="AC" + "0" * 32,
            auth_token="token",
            api_key="SK" + "1" * 32,
            api_secret="secret",
            phone_number="+15005550006",
            conversation_configuration_id="conv_configuration_0ddddddddddddddddddddddddd",
            api_base_url="http://127.0.0.1:9",
        )
    )


async def test_seed_002_per_channel_behaviour() -> None:
    tac = _offline_tac()
    names = seed_harness.run("seed_002_per_channel", seed_harness.namespace(tac=tac))
    handler = names["handle_message_ready"]
    voice = ConversationSession(conversation_id="conv_v", channel="voice")
    sms = ConversationSession(conversation_id="conv_s", channel="sms")
    assert await handler("hi", voice, None) == "generated: hi [max_tokens=100]"
    assert await handler("hi", sms, None) == "generated: hi"
    assert await tac.trigger_message_ready("yo", sms, None) == "generated: yo"
    await tac.aclose()


async def test_seed_002_conversation_ended_cleans_up() -> None:
    tac = _offline_tac()
    names = seed_harness.namespace(tac=tac)
    names["conversation_history"]["conv_1"] = ["hi"]
    seed_harness.run("seed_002_conversation_ended", names)
    await tac.start_session(ConversationSession(conversation_id="conv_1", channel="sms"))
    assert await tac.end_session("conv_1")
    assert names["conversation_history"] == {}
    await tac.aclose()


async def test_seed_002_manual_memory_retrieval() -> None:
    async with Sandbox.start() as sandbox:
        tac = TAC(TACConfig.from_env(sandbox.env))
        customer = sandbox.customer("sms")
        await customer.send("I prefer email")
        client = tac.conversation_orchestrator_client
        assert client is not None
        assert customer.conversation_id is not None
        participants = await client.list_participants(customer.conversation_id)
        me = next(p for p in participants if p.type == "CUSTOMER")
        context = ConversationSession(
            conversation_id=customer.conversation_id, channel="sms", profile_id=me.profile_id
        )
        names = await seed_harness.run_async(
            "seed_002_manual_memory", seed_harness.namespace(tac=tac, context=context)
        )
        assert isinstance(names["memory"], TACMemoryResponse)
        assert context.profile is not None
        recalls = await sandbox.client.requests(product="memory")
        assert any(r["path"].endswith("/Recall") for r in recalls)
        await tac.aclose()
