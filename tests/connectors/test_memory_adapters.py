"""Memory injection for the Anthropic, Bedrock Converse and Gemini clients: each real SDK
client talks to a local HTTP stand-in (Bedrock: botocore's Stubber), and the request it sends
carries the customer context."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from fastapi import FastAPI, Request

from tac.adapters import MemoryPromptBuilder
from tac.adapters import anthropic as tac_anthropic
from tac.adapters import bedrock as tac_bedrock
from tac.adapters import gemini as tac_gemini
from tac.models.memory import MemoryRetrievalResponse, ObservationInfo
from tac.models.tac import TACMemoryResponse
from tac.sandbox import serve_app

pytestmark = pytest.mark.integration

MEMORY = TACMemoryResponse(
    MemoryRetrievalResponse(observations=[ObservationInfo(id="o1", content="Prefers email")])
)


class StandIn:
    """Records request bodies; answers each path with a canned JSON body."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.app = FastAPI()

        @self.app.post("/{path:path}")
        async def answer(path: str, request: Request) -> Any:
            self.bodies.append(json.loads(await request.body()))
            if path.endswith("messages"):
                return {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-test",
                    "content": [{"type": "text", "text": "Hello!"}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 1, "output_tokens": 1},
                }
            return {
                "candidates": [
                    {"content": {"role": "model", "parts": [{"text": "Hello!"}]}, "index": 0}
                ]
            }


@pytest_asyncio.fixture
async def stand_in() -> AsyncIterator[tuple[StandIn, str]]:
    server = StandIn()
    async with serve_app(server.app) as url:
        yield server, url


async def test_anthropic_system_gets_the_memory(stand_in: tuple[StandIn, str]) -> None:
    pytest.importorskip("anthropic", reason="needs anthropic (opentac[anthropic])")
    from anthropic import AsyncAnthropic

    server, url = stand_in
    client = tac_anthropic.with_tac_memory(AsyncAnthropic(base_url=url, api_key="k"), MEMORY)
    message = await client.messages.create(
        model="claude-test",
        max_tokens=50,
        system="Be brief.",
        messages=[{"role": "user", "content": "hi"}],
    )
    assert message.content[0].text == "Hello!"
    system = server.bodies[0]["system"]
    assert system.startswith("Be brief.\n\n# Customer Context")
    assert "Prefers email" in system
    # blocks stay blocks; no memory means the client itself
    assert tac_anthropic.add_to_system([{"type": "text", "text": "a"}], "m")[-1]["text"] == "m"
    plain = AsyncAnthropic(base_url=url, api_key="k")
    assert tac_anthropic.with_tac_memory(plain, TACMemoryResponse.empty()) is plain


async def test_gemini_system_instruction_gets_the_memory(stand_in: tuple[StandIn, str]) -> None:
    pytest.importorskip("google.genai", reason="needs google-genai (opentac[google])")
    from google import genai
    from google.genai import types

    server, url = stand_in
    raw = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))
    client = tac_gemini.with_tac_memory(raw, MEMORY)
    config = types.GenerateContentConfig(system_instruction="Be brief.")
    response = await client.aio.models.generate_content(
        model="gemini-test", contents="hi", config=config
    )
    assert response.text == "Hello!"
    instruction = server.bodies[0]["systemInstruction"]["parts"]
    text = " ".join(part["text"] for part in instruction)
    assert text.startswith("Be brief.")
    assert "Prefers email" in text
    assert config.system_instruction == "Be brief."  # the caller's config is left alone
    sync = await asyncio.to_thread(client.models.generate_content, model="m", contents="hi")
    assert sync.text == "Hello!"
    assert "Prefers email" in json.dumps(server.bodies[1]["systemInstruction"])


def test_bedrock_converse_system_gets_the_memory() -> None:
    pytest.importorskip("boto3", reason="needs boto3 (opentac[aws])")
    import boto3
    from botocore.stub import ANY, Stubber

    runtime = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )
    memory = MemoryPromptBuilder.build(MEMORY)
    assert memory is not None
    client = tac_bedrock.with_tac_memory(runtime, MEMORY)
    with Stubber(runtime) as stub:
        # the Stubber checks the request: the caller's block, then the memory
        stub.add_response(
            "converse",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": "Hello!"}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                "metrics": {"latencyMs": 1},
            },
            {
                "modelId": "model",
                "messages": ANY,
                "system": [{"text": "Be brief."}, {"text": memory}],
            },
        )
        answer = client.converse(
            modelId="model",
            messages=[{"role": "user", "content": [{"text": "hi"}]}],
            system=[{"text": "Be brief."}],
        )
        stub.assert_no_pending_responses()
    assert answer["output"]["message"]["content"][0]["text"] == "Hello!"
    with pytest.raises(TypeError, match="bedrock-runtime client"):
        tac_bedrock.with_tac_memory(object(), MEMORY)
