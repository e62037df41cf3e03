"""Fixtures for the tools and adapters tests: a loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

CHAT_COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 0,
    "model": "fake-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!"},
            "finish_reason": "stop",
        }
    ],
}
RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 0,
    "model": "fake-model",
    "status": "completed",
    "parallel_tool_calls": False,
    "tool_choice": "auto",
    "tools": [],
    "output": [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
        }
    ],
}


def _chunk(delta: dict[str, Any], finish: str | None) -> str:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


class FakeOpenAI:
    """A loopback OpenAI-compatible server that records request bodies."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self.chat)
        self.app.post("/v1/responses")(self.responses)

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(("chat", body))
        if body.get("stream"):
            stream = _chunk({"role": "assistant", "content": "Hello!"}, None)
            stream += _chunk({}, "stop") + "data: [DONE]\n\n"
            return Response(stream, media_type="text/event-stream")
        return JSONResponse(CHAT_COMPLETION)

    async def responses(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(("responses", body))
        return JSONResponse(RESPONSE)


@pytest.fixture(scope="module")
def fake_openai_server() -> Iterator[tuple[FakeOpenAI, str]]:
    """The fake server and its base URL (``http://127.0.0.1:<port>/v1``)."""
    fake = FakeOpenAI()
    server = uvicorn.Server(
        uvicorn.Config(fake.app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake OpenAI server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield fake, f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def server(fake_openai_server: tuple[FakeOpenAI, str]) -> tuple[FakeOpenAI, str]:
    """The module's fake server with its request log cleared."""
    fake_openai_server[0].requests.clear()
    return fake_openai_server
