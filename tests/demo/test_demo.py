"""`make demo` runs `opentac demo`: the sandbox and the example agent, talking to each other."""

import subprocess
import sys

import pytest

from tac._demo import run_demo

pytestmark = pytest.mark.integration


async def test_demo_conversation_shows_memory_knowledge_and_voice() -> None:
    lines: list[str] = []
    assert await run_demo(say=lines.append) == 0
    transcript = "\n".join(lines)
    # Knowledge: the returns question is answered from the knowledge base.
    assert "within 30 days of delivery" in transcript
    # A trait set with the official twilio SDK reaches the next turn.
    assert "(I'll keep to spanish.)" in transcript
    # The closed conversation's summary (Conversation Intelligence) is remembered on the call.
    assert "Welcome back! Last time:" in transcript
    assert transcript.rstrip().endswith("sessions left open: 0")


def test_demo_is_a_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tac", "demo", "--help"], capture_output=True, text=True, check=True
    )
    assert "--serve" in result.stdout
