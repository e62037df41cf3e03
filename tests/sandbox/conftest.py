"""Fixtures for the sandbox's tests: the public plugin's fixtures plus a webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from sandbox_receiver import Receiver

from tac.sandbox import Sandbox, serve_app
from tac.testing.plugin import (  # noqa: F401 - fixtures
    customer,
    sandbox,
    sandbox_factory,
    sandbox_settings,
)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    async with serve_app(recv.app()) as url:
        recv.url = url
        yield recv


@pytest_asyncio.fixture
async def sb(sandbox_factory: Any, receiver: Receiver) -> Sandbox:  # noqa: F811
    """A sandbox whose default configuration sends webhooks to ``receiver``."""
    started: Sandbox = await sandbox_factory(app_url=receiver.url)
    return started
