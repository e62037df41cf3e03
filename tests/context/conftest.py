"""Helpers for the tac.context tests: a recording MockTransport and an injected sleep."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tac.context import RetryPolicy, TwilioHTTP

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class Recorder:
    """Routes requests to a handler and records them, and the delays slept."""

    handler: Handler
    requests: list[httpx.Request] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return self.handler(request)

        return httpx.MockTransport(handle)

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


@pytest.fixture
def make_http() -> Callable[..., tuple[TwilioHTTP, Recorder]]:
    """``make_http(handler, **kwargs)`` → a TwilioHTTP over a MockTransport, and its recorder."""

    def factory(handler: Handler, **kwargs: Any) -> tuple[TwilioHTTP, Recorder]:
        recorder = Recorder(handler)
        kwargs.setdefault("retry", RetryPolicy(attempts=3, jitter="none"))
        http = TwilioHTTP(
            api_key="SKtestkey",
            api_secret="s3cret-value",
            account_sid="AC00000000000000000000000000000000",
            transport=recorder.transport(),
            sleep=recorder.sleep,
            **kwargs,
        )
        return http, recorder

    return factory
