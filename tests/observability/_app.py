"""One app with SMS and voice against a fresh sandbox, observability switched as a test asks."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from tests._ports import free_port

from tac import observability
from tac.channels import SMSChannel
from tac.channels.voice import VoiceChannel, VoiceChannelConfig
from tac.core.config import TACConfig
from tac.core.tac import TAC
from tac.server import TACFastAPIServer, TACServerConfig
from tac_sandbox import Sandbox, serve_app


@dataclass
class ObservedApp:
    sandbox: Sandbox
    tac: TAC
    server: TACFastAPIServer
    url: str
    errors: list[tuple[BaseException, dict[str, Any]]] = field(default_factory=list)

    async def scrape(self, path: str = "/metrics") -> str:
        async with httpx.AsyncClient() as http:
            response = await http.get(self.url + path)
        response.raise_for_status()
        return response.text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a text exposition (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        if metric != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', label_text))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(value)
    return total


@contextlib.asynccontextmanager
async def observed_app(
    reply: Callable[..., Any],
    *,
    metrics: bool = True,
    tracing: bool = False,
    memory_mode: str = "never",
    metrics_path: str = "/metrics",
    session_store: Any = None,
    lease_seconds: float = 5.0,
) -> AsyncIterator[ObservedApp]:
    """Sandbox + TAC (SMS and voice) served on loopback; observability off again on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        async with Sandbox.start(app_url=url, webhook_attempts=3) as sandbox:
            tac = TAC(
                TACConfig.from_env({**sandbox.env, "TWILIO_LOG_LEVEL": "WARNING"}),
                session_store=session_store,
            )
            sms = SMSChannel(tac, config={"memory_mode": memory_mode})
            voice = VoiceChannel(tac, config=VoiceChannelConfig(memory_mode=memory_mode))
            server = TACFastAPIServer(
                tac,
                voice_channel=voice,
                messaging_channels=[sms],
                config=TACServerConfig(
                    host="127.0.0.1",
                    port=port,
                    shutdown_grace_period=5,
                    metrics_enabled=metrics,
                    metrics_path=metrics_path,
                    tracing_enabled=tracing,
                    idempotency_lease_seconds=lease_seconds,
                ),
            )
            app = ObservedApp(sandbox, tac, server, url)
            tac.on_message_ready(reply)

            @tac.on_error
            def _record(exc: BaseException, context: dict[str, Any]) -> None:
                app.errors.append((exc, context))

            async with serve_app(server.app, port=port):
                yield app
    finally:
        observability.disable()
