"""The sandbox against a client nobody here wrote: the reference SDK (twilio-agent-connect 2.5.0).

The reference runs unmodified in its own virtualenv (``.venv-reference``, created by the first
run and kept: ``benchmarks/_reference.py``), with only its product base URLs pointed at the
sandbox. It cannot be imported here (it owns the ``tac`` package, as opentac does), so its agent
(``reference_app.py``) runs in a subprocess with the environment ``opentac sandbox --write-env``
writes. Skipped, saying why, only when the reference cannot be installed (PyPI unreachable).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from tests._ports import free_port
from twilio.rest.conversations.v2.conversation import ConversationList
from twilio.rest.memory.v1 import ProfileList
from twilio.rest.memory.v1.observation import ObservationList

from tac.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks._reference import python_path, reference_python  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

APP = Path(__file__).resolve().parent / "reference_app.py"


@pytest.fixture(scope="module")
def reference() -> str:
    python, why = reference_python()
    if python is None:
        pytest.skip(f"the reference SDK could not be installed (is PyPI reachable?): {why}")
    return python


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


async def _wait_listening(port: int, process: asyncio.subprocess.Process, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise AssertionError(f"the reference app exited:\n{_read(log)}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise AssertionError(f"the reference app did not listen within 60 s:\n{_read(log)}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox(
    reference: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Sandbox]:
    port = free_port()
    log = tmp_path_factory.mktemp("reference") / "app.log"
    async with Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TAC_"))}
        env.update(sandbox.env)
        env["TAC_ANALYTICS_DISABLED"] = "true"  # the reference reports to Segment otherwise
        env["PYTHONPATH"] = python_path(opentac=False)
        with open(log, "wb") as out:  # noqa: ASYNC230 - opening a log file is instant
            process = await asyncio.create_subprocess_exec(
                reference, str(APP), str(port), env=env, cwd=ROOT, stdout=out, stderr=out
            )
        try:
            await _wait_listening(port, process, log)
            sandbox.reference_log = log  # type: ignore[attr-defined]
            yield sandbox
        finally:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()


async def test_the_documented_redirect_points_the_reference_at_the_sandbox(
    reference: str, sandbox: Sandbox
) -> None:
    """docs/sandbox.md's snippet, run in the reference's virtualenv: TAC() then reads the
    sandbox's Orchestrator configuration (synchronously, in its constructor)."""
    text = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")
    (snippet,) = re.findall(r"```python reference\n(.*?)```", text, flags=re.DOTALL)
    check = (
        "from tac import TAC, TACConfig\n"
        "agent = TAC(TACConfig.from_env())\n"
        "print(agent.conversation_memory_client.base_url)\n"
        "print(tac.tools.handoff.studio_executions_url('FW0'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "TAC_"))}
    env.update(sandbox.env, TAC_ANALYTICS_DISABLED="true", PYTHONPATH=python_path(opentac=False))
    process = await asyncio.create_subprocess_exec(
        reference, "-c", snippet + check, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    printed = out.decode().splitlines()[-2:]  # after the reference's own log lines
    assert printed == [f"{sandbox.url}/memory", f"{sandbox.url}/studio/v2/Flows/FW0/Executions"]


def _fields(reply: str) -> dict[str, str]:
    parts = [part.strip() for part in reply.split(" | ")]
    fields = dict(part.split("=", 1) for part in parts[1:])
    fields["echo"] = parts[0].removeprefix("echo ")
    return fields


def _log(sandbox: Sandbox) -> str:
    return _read(sandbox.reference_log)  # type: ignore[attr-defined]


@pytest.mark.parametrize("channel", ["sms", "whatsapp", "rcs", "chat"])
async def test_messaging_replies_reach_the_customer(sandbox: Sandbox, channel: str) -> None:
    customer = sandbox.customer(channel)
    try:
        reply = await customer.ask(f"hello on {channel}", timeout=20)
    except TimeoutError:
        pytest.fail(f"no reply on {channel}; the reference said:\n{_log(sandbox)[-4000:]}")
    fields = _fields(reply.text)
    assert fields["echo"] == f"hello on {channel}"
    assert fields["channel"] == channel.upper()
    assert reply.channel == channel


async def test_memory_and_traits_reach_the_callback(sandbox: Sandbox) -> None:
    customer = sandbox.customer("sms")
    await customer.ask("first", timeout=20)
    profiles = await sandbox.client.request("GET", "/sandbox/memory/profiles")
    (profile,) = [
        p for p in profiles["profiles"] if customer.address in json.dumps(p.get("traits", {}))
    ]
    twilio = sandbox.twilio_client()
    store = sandbox.identity.memory_store_id

    def seed_memory() -> None:
        memory = twilio.memory.v1
        memory.profiles(store, profile["id"]).patch(
            profile_patch=ProfileList.ProfilePatch({"traits": {"Preferences": {"language": "es"}}})
        )
        memory.observations(store, profile["id"]).create(
            create_observations_request=ObservationList.CreateObservationsRequest(
                {
                    "observations": [
                        {
                            "content": "Prefers email",
                            "source": "test",
                            "occurredAt": "2026-01-06T18:30:00Z",
                        }
                    ]
                }
            )
        )

    def close_conversation() -> None:
        assert customer.conversation_id is not None
        twilio.conversations.v2.conversations(customer.conversation_id).update(
            update_conversation_by_id_request=ConversationList.UpdateConversationByIdRequest(
                {"status": "CLOSED"}
            )
        )

    await asyncio.to_thread(seed_memory)
    # The reference reads a profile's traits once per conversation: start the next one.
    await asyncio.to_thread(close_conversation)
    # Recall ranks lexically: the question shares a word with the observation.
    fields = _fields((await customer.ask("can you email me", timeout=20)).text)
    traits = json.loads(fields["traits"])
    assert traits["Preferences"] == {"language": "es"}
    assert int(fields["observations"]) >= 1


async def test_voice_replies_reach_the_caller(sandbox: Sandbox) -> None:
    call = await sandbox.call(from_="+14155550177")
    reply = await call.ask("hello by phone", timeout=20)
    fields = _fields(str(reply))
    assert fields["echo"] == "hello by phone"
    assert fields["channel"] == "VOICE"
    await call.hang_up()


async def test_digital_handoff_reaches_the_flex_view(sandbox: Sandbox) -> None:
    customer = sandbox.customer("sms", "+14155550178")
    await customer.ask("hi", timeout=20)
    reply = await customer.ask("a human please", timeout=20)
    assert reply.text == "Connecting you with a person."
    tasks = await sandbox.client.request(
        "GET", "/sandbox/flex/tasks", params={"conversationId": customer.conversation_id}
    )
    (task,) = tasks["tasks"]
    assert task["attributes"]["department"] == "support"
    assert "human" in json.dumps(task)


async def test_voice_handoff_reaches_the_flex_view(sandbox: Sandbox) -> None:
    call = await sandbox.call(from_="+14155550179")
    await call.ask("hello", timeout=20)
    reply = await call.ask("a human please", timeout=20)
    assert str(reply) == "Connecting you with a person."
    ended = await call.wait_ended(timeout=20)
    assert ended["status"] in ("completed", "ended"), ended
    tasks = (await sandbox.client.request("GET", "/sandbox/flex/tasks"))["tasks"]
    voice = [t for t in tasks if t.get("callSid") == call.id]
    assert len(voice) == 1, tasks
    assert voice[0]["attributes"]["department"] == "support"


async def test_the_ci_webhook_writes_a_summary(sandbox: Sandbox) -> None:
    await sandbox.client.request(
        "PUT", "/sandbox/intelligence/rules/inactive", json={"mode": "webhook"}
    )
    customer = sandbox.customer("sms", "+14155550180")
    await customer.ask("my order 4521 is late", timeout=20)
    twilio = sandbox.twilio_client()
    conversation_id = customer.conversation_id
    assert conversation_id is not None
    await asyncio.to_thread(
        lambda: twilio.conversations.v2.conversations(conversation_id).update(
            update_conversation_by_id_request=ConversationList.UpdateConversationByIdRequest(
                {"status": "INACTIVE"}
            )
        )
    )
    store = sandbox.identity.memory_store_id
    participants = await asyncio.to_thread(
        lambda: twilio.conversations.v2.participants(conversation_id).list()
    )
    (profile_id,) = [p.profile_id for p in participants if p.type == "CUSTOMER"]
    deadline = time.monotonic() + 20
    summaries: list[Any] = []
    while time.monotonic() < deadline and not summaries:
        summaries = await asyncio.to_thread(
            lambda: twilio.memory.v1.conversation_summaries(store, profile_id).list()
        )
        await asyncio.sleep(0.2)
    assert summaries, f"no summary written; the reference said:\n{_log(sandbox)[-4000:]}"
    assert summaries[0].conversation_id == conversation_id
    assert "4521" in summaries[0].content
