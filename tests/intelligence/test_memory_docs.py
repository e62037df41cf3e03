"""The python snippet of docs/memory.md (Conversation Intelligence) runs against the sandbox."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from tac.sandbox import Sandbox
from tests._examples import example

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "memory.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def snippets() -> list[str]:
    return FENCE.findall(DOC.read_text(encoding="utf-8"))


async def test_process_cintel_event_snippet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (snippet,) = snippets()
    async with Sandbox.start() as sandbox:
        for name, value in sandbox.env.items():
            monkeypatch.setenv(name, value)
        identity = sandbox.identity
        store = identity.memory_store_id
        created = await sandbox.client.request(
            "POST",
            f"/memory/v1/Stores/{store}/Profiles",
            json={"traits": {"Contact": {"phone": "+14155550123"}}},
        )
        profile = created["id"]
        body: dict[str, Any] = example("intelligence-rule-execution-summary.json")
        body["memoryStoreId"] = store
        body["intelligenceConfiguration"]["id"] = identity.intelligence_configuration_id
        result = body["operatorResults"][0]
        result["executionDetails"]["participants"][0]["profileId"] = profile
        result["executionDetails"]["resolvedContext"]["memory"].update(
            profileId=profile, memoryStoreId=store
        )
        code = compile(snippet, f"{DOC.name}[snippet 0]", "exec")
        # the snippet runs its own event loop (asyncio.run); the sandbox keeps this one
        await asyncio.to_thread(exec, code, {"__name__": "docs_memory", "body": body})
        summaries = await sandbox.client.request(
            "GET", f"/memory/v1/Stores/{store}/Profiles/{profile}/ConversationSummaries"
        )
    assert capsys.readouterr().out == "summary 1\n"
    (summary,) = summaries["summaries"]
    assert summary["content"].startswith("Customer checked on order #4521")
    assert summary["source"] == "conversation-intelligence"
