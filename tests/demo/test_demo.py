"""`make demo` runs `opentac demo`: the sandbox, the example agent and the web console.

`opentac demo --script` plays the scripted conversation in the terminal; the example agent
answers offline by default and through a real (here: scripted) model with `OPENAI_API_KEY`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tac._demo import CUSTOMER_NUMBER, demo_stack, run_demo
from tac.testing import FakeModel

pytestmark = pytest.mark.integration


async def test_scripted_demo_shows_traits_knowledge_language_memory_and_handoff() -> None:
    lines: list[str] = []
    assert await run_demo(say=lines.append, env={}) == 0
    transcript = "\n".join(lines)
    # Greeted by the name in the Memory profile.
    assert "agent:    Hello Ana! How can I help you today?" in transcript
    # Knowledge: the returns question is answered from the knowledge base.
    assert "within 30 days of delivery" in transcript
    # A language trait set with the official twilio SDK changes the next reply (seed 003).
    assert "Según nuestro centro de ayuda (en inglés): Standard delivery takes" in transcript
    # The closed conversation's summary (Conversation Intelligence) is remembered on the call.
    assert "¡Bienvenido de nuevo, Ana! La última vez: SMS conversation" in transcript
    # On the call, the agent switches ConversationRelay's speech to the customer's language.
    assert (
        "(the agent switched the call's speech: ttsLanguage=es-ES, transcriptionLanguage=es-ES)"
        in transcript
    )
    # Asking for a human hands the conversation to Flex, with its history and the reason.
    assert "Te paso ahora con un agente humano" in transcript
    assert re.search(
        r"\(Flex: a task for whatsapp:\+15005550123, reason '.+', \d+ messages", transcript
    )
    assert transcript.rstrip().endswith("sessions left open: 0")


def test_demo_is_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tac", "demo", "--help"], capture_output=True, text=True, check=True
    )
    assert "--script" in result.stdout
    assert "--serve" in result.stdout


async def test_agent_with_a_model_uses_memory_and_the_same_tools() -> None:
    model = FakeModel()
    model.when(contains="returns").call_tool(
        "search_store_help", {"query": "returns policy"}
    ).reply("You have 30 days to return an item.")
    model.when(contains="human").call_tool("handoff", {"reason": "wants a person"}).reply(
        "Transferring you now."
    )
    model.when(contains="opening hours").reply("We open at 8 am on weekdays.")
    async with model.serve(), demo_stack(env=model.env()) as (sandbox, server):
        assert server.agent.openai_client is not None
        customer = sandbox.customer("sms", CUSTOMER_NUMBER)
        reply = await customer.ask("What is your returns policy?", timeout=15)
        assert reply.text == "You have 30 days to return an item."
        first, second = model.requests[0], model.requests[1]
        assert set(first.tools) == {"search_store_help", "handoff"}
        assert "Ana" in first.instructions  # with_tac_memory: the profile's traits
        assert "within 30 days of delivery" in second.tool_outputs[0]  # the knowledge tool ran

        call = await sandbox.call(from_=CUSTOMER_NUMBER)
        spoken = await call.ask("What are your opening hours?", timeout=15)
        assert spoken.text == "We open at 8 am on weekdays."
        assert len(spoken.tokens) > 1  # streamed token by token
        await call.hang_up()

        reply = await customer.ask("Can I talk to a human?", timeout=15)
        assert reply.text == "Transferring you now."
        tasks = await sandbox.client.request(
            "GET", "/sandbox/flex/tasks", params={"conversationId": customer.conversation_id}
        )
        assert tasks["tasks"][0]["reason"] == "wants a person"
    model.assert_complete()


def _read_until(stream: object, pattern: str, lines: list[str]) -> re.Match[str]:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        lines.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError("the demo ended before printing " + pattern + ":\n" + "".join(lines))


ENV = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "OPENAI_"))}


@contextlib.contextmanager
def running_demo() -> Iterator[subprocess.Popen[str]]:
    """``opentac demo`` in a subprocess, as `make demo` runs it (killed if a test fails)."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "tac", "demo", "--port", "0"],  # tests never take the usual port
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=ENV,
    )  # fmt: skip
    try:
        yield demo
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()


def _stop(demo: subprocess.Popen[str], signum: signal.Signals) -> str:
    """Send ``signum``; the demo must stop cleanly (exit 0, no traceback). Returns its output."""
    demo.send_signal(signum)
    out, err = demo.communicate(timeout=30)
    assert demo.returncode == 0, err
    assert "Traceback" not in err
    assert out.rstrip().endswith("stopped.")
    return out


def test_demo_runs_until_ctrl_c_and_its_chat_command_works() -> None:
    with running_demo() as demo:
        lines: list[str] = []
        console = _read_until(demo.stdout, r"Console:\s+(http://127\.0\.0\.1:\d+/console)", lines)
        response = httpx.get(console.group(1))
        assert response.status_code == 200
        assert "opentac console" in response.text
        command = _read_until(demo.stdout, r"^\s+(TWILIO_API_KEY=.*opentac sandbox chat.*)$", lines)
        # The follow-up command it prints works as printed (credentials included).
        chat = subprocess.run(
            command.group(1).replace("opentac ", f"{sys.executable} -m tac ", 1),
            shell=True,
            input="What is your returns policy?\n",
            capture_output=True,
            text=True,
            env=ENV,
            timeout=60,
        )
        assert "within 30 days of delivery" in chat.stdout, chat.stdout + chat.stderr
        _stop(demo, signal.SIGINT)


def test_demo_stops_cleanly_on_sigterm_too() -> None:
    with running_demo() as demo:
        _read_until(demo.stdout, r"Console:", [])
        _stop(demo, signal.SIGTERM)
