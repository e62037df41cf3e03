"""Every snippet of docs/sandbox-products.md's Memory/Knowledge/Studio/Calls/CI section runs."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from _products_support import ctx_of, make_app, serve

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "sandbox-products.md"
SECTION = "## Memory, Knowledge, Studio, Calls and Conversation Intelligence"


def _snippets() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split(SECTION, 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_section_has_snippets() -> None:
    assert len(_snippets()) >= 7


async def test_snippets_run_in_order_against_a_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app()
    ident = ctx_of(app).identity
    async with serve(app) as url:
        env = {
            "TWILIO_API_BASE_URL": url,
            "TWILIO_ACCOUNT_SID": ident.account_sid,
            "TWILIO_API_KEY": ident.api_key,
            "TWILIO_API_SECRET": ident.api_secret,
            "TWILIO_KNOWLEDGE_BASE_ID": ident.knowledge_base_id,
            "TWILIO_STUDIO_HANDOFF_FLOW_SID": ident.studio_flow_sid,
            "TWILIO_PHONE_NUMBER": ident.phone_number,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        namespace: dict[str, Any] = {"__name__": "docs_snippet"}
        for index, snippet in enumerate(_snippets()):
            code = compile(snippet, f"{DOC.name}[snippet {index}]", "exec")
            await asyncio.to_thread(exec, code, namespace)
    assert namespace["profile_traits"].message == "Trait modifications accepted for processing."
