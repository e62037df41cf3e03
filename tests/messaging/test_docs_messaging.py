"""The snippets of docs/channels.md (messaging) and docs/deployment.md, run against the sandbox."""

from __future__ import annotations

import ast
import inspect
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests._ports import free_port

from tac import TAC, TACConfig
from tac.sandbox import Sandbox, serve_app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def blocks(page: str, language: str) -> list[str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


async def run_block(code: str, names: dict[str, Any]) -> None:
    compiled = compile(code, "<docs>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, names)
    if inspect.isawaitable(result):
        await result


async def test_channels_page(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    setup, answer_later, report, outbound = blocks("channels.md", "python")
    port = free_port()
    async with Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox:
        for key, value in sandbox.env.items():
            monkeypatch.setenv(key, value)
        names: dict[str, Any] = {"__name__": "__docs__"}
        await run_block(setup, names)
        async with serve_app(names["server"].app, port=port):
            for channel in ("sms", "whatsapp", "chat"):
                reply = await sandbox.customer(channel).ask("hi", timeout=5)
                assert reply.text == f"You said: hi ({channel})"

            await run_block(answer_later, names)
            reply = await sandbox.customer("sms").ask("call me", timeout=5)
            assert reply.text == "Noted: call me"

            await run_block(report, names)
            tac: TAC = names["tac"]
            await tac.trigger_error(
                RuntimeError("timeout"), {"conversation_id": "conv_1", "reply_uncertain": True}
            )
            await tac.trigger_error(
                RuntimeError("human"), {"conversation_id": "conv_2", "dropped_inbound": True}
            )
            printed = capsys.readouterr().out
            assert "reply may not have arrived: conv_1 timeout" in printed
            assert "message dropped: conv_2 human" in printed

            customer = sandbox.customer("sms")
            names["customer_number"] = customer.address
            await run_block(outbound, names)
            assert (await customer.next_reply(timeout=5)).text == "Your order has shipped."
            printed = capsys.readouterr().out
            assert "{'order': '42', 'direction': 'outbound'}" in printed


@contextmanager
def running(command: list[str], cwd: Path, env: dict[str, str], port: int) -> Iterator[None]:
    child_env = {**os.environ, **env, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen(
        command, cwd=cwd, env=child_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.parametrize("how", ["uvicorn", "python"])
async def test_deployment_page_runs_the_app(tmp_path: Path, how: str) -> None:
    (main,) = blocks("deployment.md", "python")
    uvicorn_line, _state = blocks("deployment.md", "bash")
    (tmp_path / "main.py").write_text(main, encoding="utf-8")
    port = free_port()
    async with Sandbox.start(app_url=f"http://127.0.0.1:{port}") as sandbox:
        env = {**sandbox.env, "TWILIO_SERVER_HOST": "127.0.0.1", "TWILIO_SERVER_PORT": str(port)}
        if how == "uvicorn":
            # as written, listening on this test's port on loopback
            words = shlex.split(uvicorn_line.replace("0.0.0.0", "127.0.0.1"))
            words[words.index("--port") + 1] = str(port)
            command = [sys.executable, "-m", *words]
        else:
            command = [sys.executable, "main.py"]
        with running(command, tmp_path, env, port):
            reply = await sandbox.customer("sms").ask("hello", timeout=15)
    assert reply.text == "You said: hello"


async def test_deployment_page_state_url() -> None:
    _uvicorn, state = blocks("deployment.md", "bash")
    key, value = state.strip().split("=", 1)
    async with Sandbox.start() as sandbox:
        config = TACConfig.from_env({**sandbox.env, key: value})
    tac = TAC(config)
    assert type(tac.session_store).__name__ == "RedisSessionStore"
    assert config.state_url == "redis://redis.internal:6379/0"
