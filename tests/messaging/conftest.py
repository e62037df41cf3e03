"""End-to-end harness: a fresh sandbox and a TAC app served on loopback, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio
from tests._ports import free_port

from tac.channels.messaging import MessagingChannel
from tac.core.config import TACConfig
from tac.core.tac import TAC
from tac.sandbox import Sandbox, serve_app
from tac.server import TACFastAPIServer, TACServerConfig
from tac.state import SessionStore

ChannelFactory = Callable[[TAC], Sequence[MessagingChannel]]


@dataclass
class App:
    """A TAC app under test, reachable by the sandbox at ``url``."""

    sandbox: Sandbox
    tac: TAC
    server: TACFastAPIServer
    channels: list[MessagingChannel]
    url: str
    errors: list[tuple[BaseException, dict[str, Any]]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)

    def channel(self, name: str) -> MessagingChannel:
        return next(c for c in self.channels if c.channel == name)


AppFactory = Callable[..., Awaitable[App]]


@pytest_asyncio.fixture
async def start_app() -> AsyncIterator[AppFactory]:
    """``app = await start_app(lambda tac: [SMSChannel(tac)], reply=...)``: sandbox + app."""
    async with AsyncExitStack() as stack:

        async def start(
            channels: ChannelFactory,
            *,
            reply: Callable[..., Any] | None = None,
            env: dict[str, str] | None = None,
            sandbox_settings: dict[str, Any] | None = None,
            subprocess: bool = False,
            session_store: SessionStore | None = None,
        ) -> App:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            settings = {
                "app_url": url,
                "webhook_attempts": 3,
                "webhook_base_delay_seconds": 0.05,
                "webhook_timeout_seconds": 5.0,
                **(sandbox_settings or {}),
            }
            sandbox = await stack.enter_async_context(
                Sandbox.start(subprocess=subprocess, **settings)
            )
            tac = TAC(
                TACConfig.from_env({**sandbox.env, **(env or {})}), session_store=session_store
            )
            made = list(channels(tac))
            server = TACFastAPIServer(
                tac=tac,
                messaging_channels=made,
                config=TACServerConfig(host="127.0.0.1", port=port, shutdown_grace_period=5),
            )
            app = App(sandbox, tac, server, made, url)

            @tac.on_error
            def _record_error(exc: BaseException, context: dict[str, Any]) -> None:
                app.errors.append((exc, context))

            @tac.on_conversation_ended
            def _record_end(session: Any) -> None:
                app.ended.append(session.conversation_id)

            if reply is not None:
                tac.on_message_ready(reply)
            await stack.enter_async_context(serve_app(server.app, port=port))
            return app

        yield start
