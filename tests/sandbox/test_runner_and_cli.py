"""The runner (in-process and subprocess) and the ``opentac sandbox`` command line."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import BackgroundTasks, FastAPI, Request
from sandbox_receiver import Receiver

from tac.sandbox import Sandbox, serve_app
from tac.testing import verify_webhook
from tac_sandbox._db import Database
from tac_sandbox._settings import SandboxIdentity

pytestmark = pytest.mark.integration

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENV_KEYS = {
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_KEY",
    "TWILIO_API_SECRET",
    "TWILIO_PHONE_NUMBER",
    "TWILIO_WHATSAPP_NUMBER",
    "TWILIO_RCS_SENDER_ID",
    "TWILIO_CONVERSATION_CONFIGURATION_ID",
    "TWILIO_KNOWLEDGE_BASE_ID",
    "TWILIO_STUDIO_HANDOFF_FLOW_SID",
    "CONVERSATION_INTELLIGENCE_CONFIGURATION_ID",
    "CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID",
    "TWILIO_API_BASE_URL",
    "TAC_PUBLIC_BASE_URL",
    "TWILIO_VOICE_PUBLIC_DOMAIN",
    "TWILIO_SERVER_HOST",
    "TWILIO_SERVER_PORT",
}


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _opentac(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tac", *args],
        capture_output=True,
        text=True,
        env=_child_env(),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def _parse_env(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return dict(pairs)


def test_write_env_writes_a_correct_env_file(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.sqlite3"
    target = tmp_path / ".env"
    result = _opentac(
        "sandbox",
        "--db",
        str(db),
        "--port",
        "8111",
        "--app-url",
        "http://127.0.0.1:8123",
        "--write-env",
        str(target),
        "--no-serve",
    )
    assert result.returncode == 0, result.stderr
    env = _parse_env(target.read_text())
    assert set(env) == ENV_KEYS
    identity = SandboxIdentity.load_or_create(Database(db))
    assert env["TWILIO_API_KEY"] == identity.api_key
    assert env["TWILIO_API_SECRET"] == identity.api_secret
    assert env["TWILIO_AUTH_TOKEN"] == identity.auth_token
    assert env["TWILIO_CONVERSATION_CONFIGURATION_ID"] == identity.conversation_configuration_id
    assert env["TWILIO_API_BASE_URL"] == "http://127.0.0.1:8111"
    assert env["TAC_PUBLIC_BASE_URL"] == "http://127.0.0.1:8123"
    assert env["TWILIO_VOICE_PUBLIC_DOMAIN"] == "127.0.0.1:8123"
    assert env["TWILIO_SERVER_PORT"] == "8123"
    assert env["CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID"].startswith(
        "intelligence_operator_"
    )
    assert env["CONVERSATION_INTELLIGENCE_SUMMARY_OPERATOR_SID"] == (
        identity.intelligence_summary_operator_id
    )
    assert f"TWILIO_API_KEY={identity.api_key}" in result.stdout  # startup prints it too


def test_write_env_keeps_what_it_does_not_own(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.sqlite3"
    target = tmp_path / ".env"
    target.write_text(
        "# my app\n"
        "OPENAI_API_KEY=sk-mine\n"
        "export TWILIO_API_BASE_URL=http://old:1\n"
        "\n"
        "LOG_LEVEL=debug  # keep\n"
        "TWILIO_API_BASE_URL=http://duplicate:2\n"
    )
    for port in ("8111", "8112"):  # twice: the second run only updates
        result = _opentac(
            "sandbox", "--db", str(db), "--port", port, "--write-env", str(target), "--no-serve"
        )
        assert result.returncode == 0, result.stderr
    text = target.read_text()
    lines = text.splitlines()
    assert lines[:5] == [
        "# my app",
        "OPENAI_API_KEY=sk-mine",
        "export TWILIO_API_BASE_URL=http://127.0.0.1:8112",
        "",
        "LOG_LEVEL=debug  # keep",
    ]
    assert "duplicate" not in text
    assert text.count("# Written by `opentac sandbox --write-env`") == 1
    env = _parse_env(text.replace("export ", ""))
    assert set(env) == ENV_KEYS | {"OPENAI_API_KEY", "LOG_LEVEL"}


def test_bad_flags_fail_with_a_clear_message() -> None:
    result = _opentac(
        "sandbox", "--db", ":memory:", "--status-timeout-unit", "0", "--app-url", "nope"
    )
    assert result.returncode == 2
    assert "--status-timeout-unit" in result.stderr
    assert "--app-url" in result.stderr
    assert "Traceback" not in result.stderr


async def test_subprocess_sandbox_serves_and_signs(
    sandbox_factory: Any, receiver: Receiver
) -> None:
    sb: Sandbox = await sandbox_factory(subprocess=True, app_url=receiver.url)
    assert sb.app is None
    health = await sb.client.health()
    expected = {"conversations", "memory", "knowledge", "studio", "api", "webhooks"}
    assert expected <= set(health["products"])
    await sb.customer("sms").send("hello from a subprocess")
    received = await receiver.wait_for(4)
    assert verify_webhook(
        sb.identity.auth_token, received[0].url, received[0].body, received[0].headers
    )
    assert sb.env["TWILIO_API_BASE_URL"] == sb.url


class EchoAgent:
    """A minimal agent app: answers every customer message with ``echo: <text>``."""

    def __init__(self) -> None:
        self.sandbox: Sandbox | None = None
        self.app = FastAPI()
        self.app.post("/webhook")(self.webhook)

    async def webhook(self, request: Request, background: BackgroundTasks) -> dict[str, str]:
        event = await request.json()
        data = event["data"]
        if event["eventType"] == "COMMUNICATION_CREATED":
            background.add_task(self.reply, data)
        return {"status": "ok"}

    async def reply(self, data: dict[str, Any]) -> None:
        assert self.sandbox is not None
        author, me = data["author"], data["recipients"][0]
        ident = self.sandbox.identity
        if author["address"] in (ident.phone_number, ident.whatsapp_number, ident.rcs_sender_id):
            return  # our own message
        payload = {
            "from": {"participantId": me["participantId"], "channel": me["channel"]},
            "to": [{"participantId": author["participantId"], "channel": author["channel"]}],
            "content": {"text": f"echo: {data['content']['text']}"},
            "channelSettings": {"channelId": data["channelId"]},
        }
        async with httpx.AsyncClient(auth=(ident.api_key, ident.api_secret)) as http:
            await http.post(
                f"{self.sandbox.url}/conversations/v2/Conversations/{data['conversationId']}/Actions",
                json={"type": "SEND_MESSAGE", "payload": payload},
            )


@pytest_asyncio.fixture
async def echo_sandbox(sandbox_factory: Any) -> AsyncIterator[Sandbox]:
    agent = EchoAgent()
    async with serve_app(agent.app) as url:
        agent.sandbox = await sandbox_factory(app_url=url)
        yield agent.sandbox


async def test_chat_command_texts_the_agent(echo_sandbox: Sandbox, tmp_path: Path) -> None:
    ident = echo_sandbox.identity
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tac",
        "sandbox",
        "chat",
        "--channel",
        "whatsapp",
        "--url",
        echo_sandbox.url,
        "--reply-timeout",
        "10",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=_child_env(TWILIO_API_KEY=ident.api_key, TWILIO_API_SECRET=ident.api_secret),
    )
    out, err = await asyncio.wait_for(process.communicate(b"hello\n\nhow are you?\n"), 30)
    assert process.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines[0].startswith("You are whatsapp:+1")
    assert "agent> echo: hello" in lines
    assert "agent> echo: how are you?" in lines
    conversations = await echo_sandbox.client.conversations(channel="whatsapp")
    assert len(conversations) == 1


def test_chat_command_without_credentials_explains(tmp_path: Path) -> None:
    result = _opentac("sandbox", "chat", cwd=tmp_path)
    assert result.returncode == 2
    assert "TWILIO_API_KEY" in result.stderr


def test_chat_command_without_a_sandbox_explains(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TWILIO_API_KEY=SK1\nTWILIO_API_SECRET=x\n")
    result = _opentac("sandbox", "chat", "--url", "http://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 2
    assert "no sandbox answers at http://127.0.0.1:9" in result.stderr
