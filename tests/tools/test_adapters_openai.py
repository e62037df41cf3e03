"""``with_tac_memory`` with the real OpenAI SDK clients against a loopback fake endpoint."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI

from tac.adapters import MemoryPromptBuilder
from tac.adapters.openai import with_tac_memory
from tac.models.memory import MemoryRetrievalResponse, ObservationInfo
from tac.models.tac import TACMemoryResponse

pytestmark = pytest.mark.integration

MEMORY = TACMemoryResponse(
    MemoryRetrievalResponse(observations=[ObservationInfo(id="o1", content="Likes tea")])
)
MEMORY_TEXT = MemoryPromptBuilder.build(MEMORY)


def _messages() -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a concierge."},
        {"role": "user", "content": "Hi"},
    ]


def test_sync_chat_completions_carry_the_memory(server: tuple[Any, str]) -> None:
    fake, base_url = server
    client = OpenAI(api_key="test", base_url=base_url, max_retries=0)
    messages = _messages()
    before = copy.deepcopy(messages)
    wrapped = with_tac_memory(client, MEMORY)
    reply = wrapped.chat.completions.create(model="fake-model", messages=messages)
    assert reply.choices[0].message.content == "Hello!"
    assert messages == before
    client.chat.completions.create(model="fake-model", messages=messages)
    (_, sent), (_, plain) = fake.requests
    assert sent["messages"] == [{"role": "system", "content": MEMORY_TEXT}, *before]
    assert plain["messages"] == before


def test_sync_responses_carry_the_memory_in_instructions(server: tuple[Any, str]) -> None:
    fake, base_url = server
    client = OpenAI(api_key="test", base_url=base_url, max_retries=0)
    wrapped = with_tac_memory(client, MEMORY)
    wrapped.responses.create(model="fake-model", input="Hi", instructions="Be brief.")
    wrapped.responses.create(model="fake-model", input="Hi")
    client.responses.create(model="fake-model", input="Hi", instructions="Be brief.")
    instructions = [body.get("instructions") for _, body in fake.requests]
    assert instructions == [f"Be brief.\n\n{MEMORY_TEXT}", MEMORY_TEXT, "Be brief."]


async def test_async_client_create_stream_and_responses(server: tuple[Any, str]) -> None:
    fake, base_url = server
    client = AsyncOpenAI(api_key="test", base_url=base_url, max_retries=0)
    messages = _messages()
    before = copy.deepcopy(messages)
    wrapped = with_tac_memory(client, MEMORY)
    reply = await wrapped.chat.completions.create(model="fake-model", messages=messages)
    assert reply.choices[0].message.content == "Hello!"
    async with wrapped.chat.completions.stream(model="fake-model", messages=messages) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "Hello!"
    response = await wrapped.responses.create(model="fake-model", input="Hi")
    assert response.output_text == "Hello!"
    assert messages == before
    kinds = [kind for kind, _ in fake.requests]
    assert kinds == ["chat", "chat", "responses"]
    for _, body in fake.requests[:2]:
        assert body["messages"] == [{"role": "system", "content": MEMORY_TEXT}, *before]
    assert fake.requests[2][1]["instructions"] == MEMORY_TEXT
    await client.close()


def test_the_proxy_forwards_everything_else_and_leaves_the_client_alone(
    server: tuple[Any, str],
) -> None:
    fake, base_url = server
    client = OpenAI(api_key="test", base_url=base_url, max_retries=0)
    chat_before = client.chat
    wrapped = with_tac_memory(client, MEMORY)
    assert wrapped.base_url == client.base_url
    assert wrapped.models is client.models
    assert client.chat is chat_before
    assert type(client) is OpenAI
    retried = wrapped.with_options(timeout=5)
    retried.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "x"}])
    assert fake.requests[0][1]["messages"][0] == {"role": "system", "content": MEMORY_TEXT}


def test_nothing_to_add_returns_the_client_and_bad_clients_are_rejected() -> None:
    client = OpenAI(api_key="test", base_url="http://127.0.0.1:9/v1")
    assert with_tac_memory(client) is client
    assert with_tac_memory(client, TACMemoryResponse.empty()) is client
    with pytest.raises(TypeError, match=r"expects an openai\.OpenAI or openai\.AsyncOpenAI client"):
        with_tac_memory(object(), MEMORY)


def test_the_proxy_survives_copy_and_repr() -> None:
    client = OpenAI(api_key="test", base_url="http://127.0.0.1:9/v1")
    wrapped = with_tac_memory(client, MEMORY)
    assert repr(wrapped).startswith("_ClientProxy(<openai.OpenAI")
    duplicate = copy.copy(wrapped)
    assert duplicate.base_url == client.base_url
