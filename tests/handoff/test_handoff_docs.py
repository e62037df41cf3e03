"""Every python snippet of docs/handoff.md runs (the offline twin once the channels exist)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "handoff.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
SEED_PROGRAM = ROOT / "tests" / "seeds" / "snippets" / "seed_003_agent_handoff.py"
APP_ENV = {
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_API_KEY": "SK" + "0" * 32,
    "TWILIO_API_SECRET": "secret",
    "TWILIO_PHONE_NUMBER": "+15005550006",
    "TWILIO_CONVERSATION_CONFIGURATION_ID": "conv_configuration_x",
    "TWILIO_STUDIO_HANDOFF_FLOW_SID": "FW" + "1" * 32,
}


def snippets() -> list[str]:
    return FENCE.findall(DOC.read_text(encoding="utf-8"))


def run(index: int, namespace: dict[str, Any]) -> None:
    code = compile(snippets()[index], f"{DOC.name}[snippet {index}]", "exec")
    exec(code, namespace)


def test_the_page_has_its_snippets() -> None:
    assert len(snippets()) == 3


def test_the_tool_and_the_scripted_model(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in APP_ENV.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, Any] = {"__name__": "docs_handoff"}
    run(0, namespace)
    run(1, namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "handoff ['reason']",
        "Hello!",
        'handoff {"reason": "asked for a person"}',
        "Be brief",
    ]
    assert namespace["tac"].has_callback("message_ready")


def test_seed_003_offline_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tac.channels.sms", reason="the messaging channels are not merged yet")
    pytest.importorskip("tac.channels.voice", reason="the voice channel is not merged yet")
    shutil.copy(SEED_PROGRAM, tmp_path / "agent_handoff.py")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))
    for name in list(__import__("os").environ):
        if name.startswith(("TWILIO_", "TAC_", "CONVERSATION_INTELLIGENCE_", "OPENAI_")):
            monkeypatch.delenv(name)
    run(2, {"__name__": "docs_handoff_twin"})
    printed = capsys.readouterr().out
    assert "agent: Hello! How can I help you today?\n" in printed
    assert "agent: Le comunico con un agente humano.\n" in printed
    assert "Switch to language spanish" in printed
    assert "Flex task: sms +1" in printed
    assert "'department': 'support', 'priority': 'normal', 'reason'" in printed
    assert "'language': 'spanish'" in printed
    assert "  customer: I want to talk to a human\n" in printed
    assert "summary: SMS conversation" in printed
