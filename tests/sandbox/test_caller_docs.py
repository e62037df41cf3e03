"""Every ```python block of docs/sandbox-voice.md runs, in order, against a loopback agent."""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from _caller_support import AgentState, agent_app, serve

pytestmark = pytest.mark.integration

PAGE = Path(__file__).resolve().parents[2] / "docs" / "sandbox-voice.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest_asyncio.fixture
async def agent() -> AsyncIterator[AgentState]:
    state = AgentState(auth_token="", check_signatures=False)
    async with serve(agent_app(state)) as url:
        state.base_url = url
        yield state


async def test_every_snippet_runs(agent: AgentState) -> None:
    blocks = FENCE.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 5

    def configure_app(env: dict[str, str]) -> None:
        configuration = env["TWILIO_CONVERSATION_CONFIGURATION_ID"]
        agent.twiml = lambda s: s.default_twiml(conversationConfiguration=configuration)

    namespace: dict[str, object] = {
        "__name__": "docs:sandbox-voice",
        "app_url": agent.base_url,
        "configure_app": configure_app,
    }
    for number, block in enumerate(blocks, 1):
        code = compile(
            block, f"sandbox-voice.md#snippet{number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        )
        result = eval(code, namespace)
        if inspect.iscoroutine(result):
            await result
        agent.twiml = None  # configure_app lasts one snippet (each starts its own sandbox)
