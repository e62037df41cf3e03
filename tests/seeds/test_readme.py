"""The README's first agent: the code as printed, run as a server against the sandbox."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import seed_harness
from tac.sandbox import Sandbox

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("page", ["README.md", "docs/quickstart.md"])
def test_snippet_is_the_printed_code(page: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / page).read_text(), re.S)
    assert blocks == [seed_harness.source("readme_first_agent")]


async def test_readme_agent_answers_sms_and_voice(tmp_path: Path) -> None:
    app_url = f"http://127.0.0.1:{seed_harness.free_port()}"
    db = tmp_path / "sandbox.db"
    async with Sandbox.start(subprocess=True, db=str(db), app_url=app_url) as sandbox:
        env = seed_harness.write_env(db, app_url, sandbox.settings.port, tmp_path / ".env")
        with seed_harness.start_app(["readme_first_agent"], env, log=tmp_path / "app.log"):
            reply = await sandbox.customer("sms").ask("hi there", timeout=15)
            assert reply.text == "Hello there, you said: hi there"
            call = await sandbox.call()
            spoken = await call.ask("good morning", timeout=15)
            assert spoken.text == "Hello there, you said: good morning"
            await call.hang_up()
