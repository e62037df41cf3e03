"""Smoke: one SMS turn through the sandbox."""

from __future__ import annotations

import pytest

from tac.channels.sms import SMSChannel

pytestmark = pytest.mark.integration


async def test_sms_reply(start_app) -> None:
    async def echo(message, session, memory):
        return f"echo: {message}"

    app = await start_app(lambda tac: [SMSChannel(tac)], reply=echo)
    customer = app.sandbox.customer("sms")
    reply = await customer.ask("hello", timeout=5)
    assert reply.text == "echo: hello"
    assert app.errors == []
