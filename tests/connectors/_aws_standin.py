"""A local stand-in for the Bedrock Agents and AgentCore runtime endpoints that real boto3
clients talk to (``endpoint_url=``): AWS event streams and server-sent events on the wire."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import boto3
from fastapi import FastAPI, Request, Response


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack("B", len(raw_name)) + raw_name + b"\x07" + struct.pack(">H", len(raw_value))
    ) + raw_value


def event_message(event_type: str, payload: dict[str, Any]) -> bytes:
    """One message of the AWS event stream encoding (prelude, headers, payload, CRCs)."""
    headers = (
        _header(":message-type", "event")
        + _header(":event-type", event_type)
        + _header(":content-type", "application/json")
    )
    body = json.dumps(payload).encode()
    total = 12 + len(headers) + len(body) + 4
    prelude = struct.pack(">II", total, len(headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + headers + body
    return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)


class AWSStandIn:
    """Answers ``InvokeAgent`` with ``chunks`` as an event stream and ``InvokeAgentRuntime``
    with ``tokens`` as server-sent events; records what it was sent."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.tokens: list[str] = []
        self.agent_requests: list[tuple[str, dict[str, Any]]] = []
        self.runtime_requests: list[tuple[str, dict[str, Any]]] = []
        self.app = FastAPI()

        @self.app.post("/agents/{agent_id}/agentAliases/{alias}/sessions/{session}/text")
        async def invoke_agent(agent_id: str, alias: str, session: str, request: Request) -> Any:
            self.agent_requests.append((session, json.loads(await request.body())))
            stream = b"".join(
                event_message("chunk", {"bytes": base64.b64encode(c.encode()).decode()})
                for c in self.chunks
            )
            return Response(
                stream,
                media_type="application/vnd.amazon.eventstream",
                headers={
                    "x-amzn-bedrock-agent-content-type": "text/plain",
                    "x-amz-bedrock-agent-session-id": session,
                },
            )

        @self.app.post("/runtimes/{arn:path}/invocations")
        async def invoke_runtime(arn: str, request: Request) -> Any:
            session = request.headers.get("x-amzn-bedrock-agentcore-runtime-session-id", "")
            self.runtime_requests.append((session, json.loads(await request.body())))
            events = "".join(
                f"data: {json.dumps({'type': 'text', 'token': t})}\n\n" for t in self.tokens
            )
            return Response(events + "data: [DONE]\n\n", media_type="text/event-stream")


def client(service: str, url: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
