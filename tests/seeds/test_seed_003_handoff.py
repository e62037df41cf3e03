"""Seed 003 ("Integrating Twilio Agent Connect with Twilio Flex for Human Handoff") end to end.

Its program (``snippets/seed_003_agent_handoff.py``, verbatim) runs unmodified in a
subprocess against the sandbox, with the environment ``opentac sandbox --write-env`` writes
(as ``.env`` beside it) plus a scripted model (``OPENAI_BASE_URL``). The trait script
(``snippets/seed_003_trait_script.py``, whose one change is the sandbox ``http_client``) sets
the customer's language with the official ``twilio`` client; the agent sees it in
``context.profile.traits``; the customer asks for a human; the handoff reaches the sandbox's
Flex view with the conversation's history and Conversation Intelligence's summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests._ports import free_port as _free_port

import tac
import tac.sandbox
from tac.sandbox import Sandbox
from tac.testing import FakeModel

pytestmark = pytest.mark.integration

# The program needs the SMS and voice channels.
pytest.importorskip("tac.channels.sms", reason="the messaging channels are not merged yet")
pytest.importorskip("tac.channels.voice", reason="the voice channel is not merged yet")

SNIPPETS = Path(__file__).resolve().parent / "snippets"
SRC = Path(__file__).resolve().parents[2] / "src"
STORE_PLACEHOLDER = "mem_store_00000000000000000000000000"
PROFILE_PLACEHOLDER = "mem_profile_00000000000000000000000000"
HANDOFF_REASON = "The customer asked to speak with a human agent."
ATTRIBUTES = {"department": "support", "priority": "normal", "reason": HANDOFF_REASON}


def _output(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")


async def _wait_listening(port: int, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise AssertionError(f"the seed program exited:\n{_output(log)}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"the seed program did not listen on {port}:\n{_output(log)}")


@contextlib.asynccontextmanager
async def seed_003(tmp_path: Path, model: FakeModel, **settings: Any) -> AsyncIterator[Sandbox]:
    """The sandbox, and seed 003's program running against it (stopped on exit)."""
    port = _free_port()
    async with Sandbox.start(
        app_url=f"http://127.0.0.1:{port}",
        webhook_attempts=3,
        webhook_base_delay_seconds=0.05,
        **settings,
    ) as sandbox:
        env_file = "".join(f"{key}={value}\n" for key, value in sandbox.env.items())
        (tmp_path / ".env").write_text(env_file, encoding="utf-8")
        shutil.copy(SNIPPETS / "seed_003_agent_handoff.py", tmp_path / "agent_handoff.py")
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TWILIO_", "TAC_", "CONVERSATION_INTELLIGENCE_", "OPENAI_"))
        }
        environment.update(model.env(), PYTHONPATH=str(SRC), PYTHONUNBUFFERED="1")
        log = tmp_path / "app.log"
        with log.open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "agent_handoff.py",
                cwd=tmp_path,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            await _wait_listening(port, process, log)
            yield sandbox
        finally:
            if process.returncode is None:
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        output_text = _output(log)
        assert "Traceback" not in output_text, output_text


async def _profile_of(sandbox: Sandbox, phone: str) -> str:
    listing = await sandbox.client.request("GET", "/sandbox/memory/profiles")
    for profile in listing["profiles"]:
        if profile["traits"].get("Contact", {}).get("phone") == phone:
            return str(profile["id"])
    raise AssertionError(f"no Memory profile for {phone}: {listing}")


async def _run_trait_script(
    sandbox: Sandbox, profile_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seed's trait script, with the ids a reader copies from the Console (in a thread:
    the official client is synchronous and the sandbox runs on this event loop)."""
    for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_API_BASE_URL"):
        monkeypatch.setenv(key, sandbox.env[key])
    script = (SNIPPETS / "seed_003_trait_script.py").read_text(encoding="utf-8")
    script = script.replace(STORE_PLACEHOLDER, sandbox.identity.memory_store_id)
    script = script.replace(PROFILE_PLACEHOLDER, profile_id)
    code = compile(script, "seed_003_trait_script.py", "exec")
    await asyncio.to_thread(exec, code, {"tac": tac})


async def _flex_task(sandbox: Sandbox, conversation_id: str) -> dict[str, Any]:
    """The Flex task of a conversation, once Conversation Intelligence's summary is in."""
    deadline = time.monotonic() + 15
    tasks: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        answer = await sandbox.client.request(
            "GET", "/sandbox/flex/tasks", params={"conversationId": conversation_id}
        )
        tasks = answer["tasks"]
        if tasks and tasks[0]["summary"] is not None:
            assert len(tasks) == 1, tasks
            return tasks[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no Flex task with a summary for {conversation_id}: {tasks}")


def _script_model() -> FakeModel:
    model = FakeModel()
    model.reply("Hello! How can I help you today?")
    model.reply("Claro. Su pedido llega mañana.")
    model.when(contains="human").call_tool("handoff", {"reason": HANDOFF_REASON}).reply(
        "Le comunico con un agente humano."
    )
    return model


def _assert_model_saw_the_trait(model: FakeModel) -> None:
    first, second, handoff, after_tool = model.requests
    assert "spanish" not in first.instructions
    assert "Switch to language spanish" in second.instructions
    assert "Switch to language spanish" in handoff.instructions
    assert handoff.tools == ("handoff",)
    assert after_tool.tool_outputs


async def test_seed_003_over_sms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _script_model()
    async with model.serve(), seed_003(tmp_path, model) as sandbox:
        customer = sandbox.customer("sms")
        assert (await customer.ask("Hi", timeout=20)).text == "Hello! How can I help you today?"
        await _run_trait_script(sandbox, await _profile_of(sandbox, customer.address), monkeypatch)
        reply = await customer.ask("Where is my order?", timeout=20)
        assert reply.text == "Claro. Su pedido llega mañana."
        handed_off = await customer.ask("I want to talk to a human", timeout=20)
        assert handed_off.text == "Le comunico con un agente humano."
        conversation_id = customer.conversation_id
        assert conversation_id is not None
        task = await _flex_task(sandbox, conversation_id)
        conversation = await sandbox.client.request(
            "GET", f"/conversations/v2/Conversations/{conversation_id}"
        )
        updates = [
            r
            for r in await sandbox.client.requests("conversations")
            if r["method"] == "PUT" and r["path"].endswith(conversation_id)
        ]

    _assert_model_saw_the_trait(model)
    assert json.loads(model.requests[3].tool_outputs[0]) == {
        "status": "handoff_initiated",
        "channel": "sms",
    }
    assert conversation["configuration"]["statusCallbacks"] == []
    assert [r["status"] for r in updates] == [200]
    assert task["source"] == "studio_execution"
    assert task["channel"] == "sms"
    assert task["customer"]["address"] == customer.address
    assert task["customer"]["traits"]["Contact"]["language"] == "spanish"
    assert task["agentAddress"] == sandbox.identity.phone_number
    assert task["attributes"] == ATTRIBUTES
    assert task["reason"] == HANDOFF_REASON
    customer_lines = [line["text"] for line in task["history"] if line["role"] == "customer"]
    assert customer_lines == ["Hi", "Where is my order?", "I want to talk to a human"]
    agent_lines = [line["text"] for line in task["history"] if line["role"] == "agent"]
    assert agent_lines[:2] == ["Hello! How can I help you today?", "Claro. Su pedido llega mañana."]
    assert task["summary"]["source"] == "conversation-intelligence"
    assert task["summary"]["content"]


async def test_seed_003_over_voice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _script_model()
    async with model.serve(), seed_003(tmp_path, model) as sandbox:
        # Conversation Intelligence posts to the app's /ci-webhook; the app writes the summary.
        await sandbox.client.request(
            "PUT", "/sandbox/intelligence/rules/inactive", json={"mode": "webhook"}
        )
        call = await sandbox.call()
        assert (await call.ask("Hi", timeout=20)).text == "Hello! How can I help you today?"
        caller = call.details["from"]
        await _run_trait_script(sandbox, await _profile_of(sandbox, caller), monkeypatch)
        reply = await call.ask("Where is my order?", timeout=20)
        assert reply.text == "Claro. Su pedido llega mañana."
        handed_off = await call.ask("I want to talk to a human", timeout=20)
        assert handed_off.text == "Le comunico con un agente humano."
        ended = await call.wait_ended(timeout=20)
        conversation_id = json.loads(ended["handoffData"])["conversationId"]
        task = await _flex_task(sandbox, conversation_id)
        deliveries = await sandbox.client.request("GET", "/sandbox/intelligence/deliveries")

    _assert_model_saw_the_trait(model)
    assert json.loads(model.requests[3].tool_outputs[0]) == {
        "status": "handoff_initiated",
        "channel": "voice",
    }
    assert task["source"] == "voice_handoff"
    assert task["channel"] == "voice"
    assert task["customer"]["address"] == caller
    assert task["customer"]["traits"]["Contact"]["language"] == "spanish"
    assert task["attributes"] == ATTRIBUTES
    customer_lines = [line["text"] for line in task["history"] if line["role"] == "customer"]
    assert customer_lines == ["Hi", "Where is my order?", "I want to talk to a human"]
    assert task["summary"]["source"] == "conversation-intelligence"
    assert [d["status"] for d in deliveries["deliveries"]] == [200]
