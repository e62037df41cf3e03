"""JSON logs: trace and span ids, conversation id and channel, redaction, uvicorn's lines."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from tests._ports import free_port
from tests.observability._app import observed_app

from tac import observability
from tac.core.logging import JSONFormatter, get_logger, uvicorn_log_config
from tac.models.session import ConversationSession
from tac.observability import _hooks

SRC = str(Path(__file__).resolve().parents[2] / "src")


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JSONFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_lines() -> Iterator[_Lines]:
    handler = _Lines()
    logger = logging.getLogger("tac")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.mark.integration
async def test_a_turns_lines_carry_its_ids_and_hide_addresses(json_lines: _Lines) -> None:
    provider = TracerProvider()
    observability.enable_tracing(provider)
    app_log = get_logger("app")

    async def agent(message: str, session: ConversationSession, memory: Any) -> str:
        app_log.warning("customer %s wrote from +1 415 555 0123, jane.doe@example.com", message)
        return "ok"

    async with observed_app(agent, metrics=False) as app:
        customer = app.sandbox.customer("sms")
        await customer.ask("hi", timeout=5)
    (line,) = [x for x in json_lines.lines if x["logger"] == "tac.app"]
    assert line["conversation_id"] == customer.conversation_id
    assert line["channel"] == "sms"
    assert len(line["trace_id"]) == 32
    assert len(line["span_id"]) == 16
    assert "555 0123" not in line["message"]
    assert "jane.doe" not in line["message"]
    assert "j***@example.com" in line["message"]


@pytest.mark.unit
def test_lines_outside_a_turn_have_no_turn_fields() -> None:
    handler = _Lines()
    record = logging.LogRecord("tac.x", logging.INFO, __file__, 1, "call +14155550123", (), None)
    line = json.loads(handler.format(record))
    assert "conversation_id" not in line
    assert "trace_id" not in line
    assert line["message"] == "call +1***0123"


@pytest.mark.unit
def test_the_turn_context_is_bound_per_task() -> None:
    async def main() -> list[Any]:
        async def turn(conversation_id: str) -> Any:
            _hooks.bind_log_context(conversation_id, "sms")
            await asyncio.sleep(0)
            return _hooks.log_context()

        results = await asyncio.gather(turn("conv_a"), turn("conv_b"))
        return [*results, _hooks.log_context()]

    assert asyncio.run(main()) == [("conv_a", "sms"), ("conv_b", "sms"), None]


@pytest.mark.unit
def test_uvicorn_log_config_uses_the_chosen_format() -> None:
    config = uvicorn_log_config("warning", "json")
    assert config["formatters"]["opentac"]["()"] == "tac.core.logging.JSONFormatter"
    assert config["loggers"]["uvicorn"]["level"] == "WARNING"
    console = uvicorn_log_config()
    assert console["formatters"]["opentac"]["()"] == "tac.core.logging.ConsoleFormatter"


_SERVE = """
from tac import TAC
from tac.server import TACFastAPIServer, TACServerConfig
tac = TAC()
TACFastAPIServer(tac, config=TACServerConfig(host="127.0.0.1", port={port})).start()
"""


@pytest.mark.integration
def test_server_start_writes_uvicorns_lines_as_json() -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_API_KEY": "SK" + "0" * 32,
        "TWILIO_API_SECRET": "secret",
        "TWILIO_PHONE_NUMBER": "+15005550006",
        "TWILIO_LOG_FORMAT": "json",
        "TWILIO_LOG_LEVEL": "INFO",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE.format(port=port)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "startup complete" in line:
                break
    finally:
        process.terminate()
        _, rest = process.communicate(timeout=15)
    assert any("startup complete" in line for line in lines), lines
    lines += rest.splitlines()
    assert any("Shutting down" in line for line in lines), lines
    for line in lines:
        record = json.loads(line)
        assert record["logger"].startswith(("uvicorn", "tac."))
    assert any(json.loads(line)["logger"].startswith("uvicorn") for line in lines)
