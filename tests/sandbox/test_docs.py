"""Every snippet of docs/sandbox.md and docs/testing.md runs.

Python blocks run in a worker thread (each starts its own event loop with ``asyncio.run``);
testing.md's ``conftest.py`` and test module run under pytest in a child process; console
blocks run ``python -m tac`` with a free ``--port`` appended, in a scratch folder with its own
data folder, ``chat`` with one line of input and a short ``--reply-timeout``.
"""

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests._ports import free_port as _free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _blocks(name: str, language: str) -> list[str]:
    text = (DOCS / name).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return env


def _exec(source: str, name: str) -> None:
    exec(compile(source, name, "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize(
    ("doc", "index"),
    [("sandbox.md", i) for i in range(len(_blocks("sandbox.md", "python")))]
    + [
        ("testing.md", i)
        for i, block in enumerate(_blocks("testing.md", "python"))
        if "pytest" not in block
    ],
)
async def test_python_snippet_runs(doc: str, index: int) -> None:
    source = _blocks(doc, "python")[index]
    await asyncio.wait_for(asyncio.to_thread(_exec, source, f"{doc}[{index}]"), 60)


def test_testing_md_example_passes_under_pytest(tmp_path: Path) -> None:
    blocks = _blocks("testing.md", "python")
    (tmp_path / "conftest.py").write_text(next(b for b in blocks if "pytest_plugins" in b))
    (tmp_path / "test_example.py").write_text(next(b for b in blocks if "def test_" in b))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(tmp_path),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


async def test_console_snippets_run(tmp_path: Path) -> None:
    (block,) = _blocks("sandbox.md", "console")
    commands = [line.removeprefix("$ ").split() for line in block.splitlines() if line]
    port = str(_free_port())
    python = [sys.executable, "-m", "tac"]
    write_env, serve, chat = commands
    assert write_env[0] == serve[0] == chat[0] == "opentac"

    first = await asyncio.create_subprocess_exec(
        *python, *write_env[1:], "--port", port, cwd=tmp_path, env=_env(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(first.communicate(), 60)
    assert first.returncode == 0, err.decode()
    assert f"TWILIO_API_BASE_URL=http://127.0.0.1:{port}" in (tmp_path / ".env").read_text()

    server = await asyncio.create_subprocess_exec(
        *python, *serve[1:], "--port", port, cwd=tmp_path, env=_env(tmp_path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/sandbox/health")).is_success:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        talk = await asyncio.create_subprocess_exec(
            *python, *chat[1:], "--reply-timeout", "0.2", cwd=tmp_path, env=_env(tmp_path),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(talk.communicate(b"hello\n"), 60)
        assert talk.returncode == 0, err.decode()
        assert "(no reply within 0.2s)" in out.decode()  # no agent is running
    finally:
        server.terminate()
        await server.wait()
