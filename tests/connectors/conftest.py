"""Connectors end to end: a sandbox, a TAC app on loopback, and a scripted model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio

from tac.channels.messaging import MessagingChannel
from tac.core.config import TACConfig
from tac.core.tac import TAC
from tac.sandbox import Sandbox, serve_app
from tac.server import TACFastAPIServer, TACServerConfig
from tests._ports import free_port


@dataclass
class App:
    """A TAC app the sandbox reaches at ``url``; ``setup`` (given the TAC) made the connectors."""

    sandbox: Sandbox
    tac: TAC
    channels: list[MessagingChannel]
    errors: list[tuple[BaseException, dict[str, Any]]] = field(default_factory=list)


StartApp = Callable[..., Awaitable[App]]


@pytest_asyncio.fixture
async def start_app() -> AsyncIterator[StartApp]:
    """``app = await start_app(channels=lambda tac: [...], setup=lambda tac: ...)``; with
    ``voice=lambda tac: channel``, the server answers the sandbox's calls too."""
    async with AsyncExitStack() as stack:

        async def start(
            *,
            channels: Callable[[TAC], Sequence[MessagingChannel]],
            setup: Callable[[TAC], Any],
            voice: Callable[[TAC], Any] | None = None,
        ) -> App:
            port = free_port()
            sandbox = await stack.enter_async_context(
                Sandbox.start(
                    app_url=f"http://127.0.0.1:{port}",
                    webhook_attempts=2,
                    webhook_base_delay_seconds=0.05,
                )
            )
            tac = TAC(TACConfig.from_env(sandbox.env))
            stack.push_async_callback(tac.aclose)
            made = list(channels(tac))
            app = App(sandbox, tac, made)
            tac.on_error(lambda exc, context: app.errors.append((exc, context)))
            setup(tac)
            server = TACFastAPIServer(
                tac=tac,
                voice_channel=voice(tac) if voice is not None else None,
                messaging_channels=made,
                config=TACServerConfig(host="127.0.0.1", port=port, shutdown_grace_period=5),
            )
            await stack.enter_async_context(serve_app(server.app, port=port))
            return app

        yield start
