"""A loopback webhook receiver for the sandbox's tests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response


@dataclass
class Received:
    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def event_type(self) -> str:
        return str(self.json["eventType"])


@dataclass
class Receiver:
    """A loopback app that records webhooks and answers with scripted statuses/delays."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    holds: list[asyncio.Event] = field(default_factory=list)  # answer once each is set
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.api_route("/webhook", methods=["POST", "GET"])
        async def webhook(request: Request) -> Response:
            body = await request.body()
            self.received.append(Received(str(request.url), dict(request.headers), body))
            self._changed.set()
            if self.holds:
                await self.holds.pop(0).wait()
            status = self.statuses.pop(0) if self.statuses else 200
            return Response(status_code=status)

        return app

    async def wait_for(
        self, count: int, event_type: str | None = None, timeout: float = 5.0
    ) -> list[Received]:
        async def enough() -> list[Received]:
            while True:
                found = self.of(event_type)
                if len(found) >= count:
                    return found
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(enough(), timeout)

    def of(self, event_type: str | None = None) -> list[Received]:
        return [r for r in self.received if event_type is None or r.event_type == event_type]
