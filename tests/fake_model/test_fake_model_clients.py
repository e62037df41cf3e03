"""The scripted fake model against the real ``openai`` clients and the Agents SDK's Runner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

from tac.testing import FakeModel, UnconsumedModelSteps, UnexpectedModelRequest

pytestmark = pytest.mark.integration

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(autouse=True)
def _no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)
    return


async def test_responses_plain_and_streamed_with_async_client() -> None:
    model = FakeModel()
    model.reply("Hola, ¿qué tal?").call_tool("get_weather", {"city": "Lima"})
    async with model.serve():
        client = openai.AsyncOpenAI(base_url=model.base_url, api_key="sk-test", max_retries=0)
        first = await client.responses.create(
            model="gpt-test", instructions="Speak spanish", input="hello"
        )
        assert first.output_text == "Hola, ¿qué tal?"
        assert first.usage is not None
        assert first.usage.total_tokens > 0
        stream = await client.responses.create(
            model="gpt-test", input="weather?", tools=[WEATHER_TOOL], stream=True
        )
        events = [event async for event in stream]
        await client.close()
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    call = events[-1].response.output[0]  # type: ignore[union-attr]
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Lima"}
    assert model.requests[0].instructions == "Speak spanish"
    assert model.requests[0].user_text == "hello"
    assert model.requests[1].stream
    assert model.requests[1].tools == ("get_weather",)


def test_streamed_text_arrives_in_several_deltas_with_sync_client() -> None:
    model = FakeModel().reply("one two three")
    with model.serve():
        client = openai.OpenAI(base_url=model.base_url, api_key="sk-test", max_retries=0)
        stream = client.responses.create(model="m", input="count", stream=True)
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        client.close()
    assert deltas == ["one ", "two ", "three"]


def test_chat_completions_tool_call_then_reply_plain_and_streamed() -> None:
    chat_tool = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    model = FakeModel()
    model.call_tool("get_weather", {"city": "Oslo"}).reply("It is cold.")
    model.call_tool("get_weather", {"city": "Rome"}).reply("Warm and sunny")
    with model.serve():
        client = openai.OpenAI(base_url=model.base_url, api_key="sk-test", max_retries=0)
        messages: list[Any] = [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather in Oslo?"},
        ]
        first = client.chat.completions.create(model="m", messages=messages, tools=[chat_tool])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        call = choice.message.tool_calls[0]  # type: ignore[index]
        assert json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
        messages += [
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "-5C"},
        ]
        second = client.chat.completions.create(model="m", messages=messages, tools=[chat_tool])
        assert second.choices[0].message.content == "It is cold."

        stream = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "Rome?"}],
            tools=[chat_tool],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        streamed_args = "".join(
            tc.function.arguments or ""
            for c in chunks
            for ch in c.choices
            for tc in ch.delta.tool_calls or []
            if tc.function is not None
        )
        assert json.loads(streamed_args) == {"city": "Rome"}
        assert chunks[-1].usage is not None
        text_stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "so?"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in text_stream if c.choices)
        client.close()
    assert text == "Warm and sunny"
    assert model.requests[0].instructions == "be brief"
    assert model.requests[1].tool_outputs == ("-5C",)
    assert not model.requests[1].is_user_turn


async def test_agents_runner_runs_a_function_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    model = FakeModel()
    model.when(contains="weather").call_tool("get_weather", {"city": "Paris"}).reply(
        "Sunny in Paris."
    )
    model.reply("Bonjour!")
    async with model.serve():
        monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        agent = Agent(name="a", instructions="Answer in french", tools=[get_weather])
        greeting = await Runner.run(agent, "hi")
        answer = await Runner.run(agent, "what's the weather like?")
    assert greeting.final_output == "Bonjour!"
    assert answer.final_output == "Sunny in Paris."
    assert calls == ["Paris"]
    assert [r.api for r in model.requests] == ["responses"] * 3
    assert model.requests[2].tool_outputs == ("sunny in Paris",)
    assert all("french" in r.instructions for r in model.requests)


async def test_agents_runner_streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    @function_tool
    def handoff(reason: str) -> dict[str, str]:
        """Hand the customer to a human."""
        return {"status": "handoff_initiated", "reason": reason}

    model = FakeModel()
    model.call_tool("handoff", {"reason": "customer asked"}).reply("Transferring you now.")
    async with model.serve():
        monkeypatch.setenv("OPENAI_BASE_URL", model.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        agent = Agent(name="a", instructions="x", tools=[handoff])
        result = Runner.run_streamed(agent, "a human please")
        async for _ in result.stream_events():
            pass
    assert result.final_output == "Transferring you now."
    assert "handoff_initiated" in model.requests[1].tool_outputs[0]
    assert all(r.stream for r in model.requests)


async def test_agents_chat_completions_model() -> None:
    @function_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    model = FakeModel()
    model.call_tool("add", {"a": 2, "b": 3}).reply("5")
    async with model.serve():
        client = openai.AsyncOpenAI(base_url=model.base_url, api_key="sk-test")
        agent = Agent(
            name="calc",
            instructions="Compute",
            tools=[add],
            model=OpenAIChatCompletionsModel(model="m", openai_client=client),
            model_settings=ModelSettings(),
        )
        result = await Runner.run(agent, "2+3?")
        await client.close()
    assert result.final_output == "5"
    assert [r.api for r in model.requests] == ["chat_completions"] * 2
    assert model.requests[1].tool_outputs == ("5",)


async def test_unexpected_request_reaches_the_client_and_fails_the_test() -> None:
    model = FakeModel().reply("only one")
    serving = model.serve()
    await serving.__aenter__()
    client = openai.AsyncOpenAI(base_url=model.base_url, api_key="k", max_retries=0)
    await client.responses.create(model="m", input="one")
    with pytest.raises(openai.BadRequestError, match="unexpected request #1"):
        await client.responses.create(model="m", input="two")
    await client.close()
    with pytest.raises(UnexpectedModelRequest, match="no scripted step or rule left"):
        await serving.__aexit__(None, None, None)


async def test_tool_not_offered_is_unexpected() -> None:
    model = FakeModel().call_tool("handoff", {"reason": "x"})
    async with model.serve(check=False), httpx.AsyncClient(base_url=model.base_url) as http:
        answer = await http.post("/responses", json={"model": "m", "input": "hi"})
    assert answer.status_code == 400
    assert "offers no tool 'handoff'" in answer.json()["error"]["message"]
    with pytest.raises(UnexpectedModelRequest):
        model.assert_complete()


async def test_unused_steps_and_rules_fail_on_exit() -> None:
    model = FakeModel().reply("never asked")
    model.when(contains="human").reply("never matched")
    with pytest.raises(UnconsumedModelSteps) as raised:
        async with model.serve():
            pass
    assert "reply('never asked')" in str(raised.value)
    assert "when(contains='human') (never matched)" in str(raised.value)


async def test_scripted_failure_and_bad_bodies() -> None:
    model = FakeModel().fail(429, "slow down")
    async with FakeModel.serve() as other:
        assert other is not model
        assert other.base_url.endswith("/v1")
    async with model.serve(check=False), httpx.AsyncClient(base_url=model.base_url) as http:
        limited = await http.post("/responses", json={"model": "m", "input": "hi"})
        not_json = await http.post("/chat/completions", content=b"{nope")
        unknown = await http.get("/embeddings")
        listing = await http.get("/models")
    assert limited.status_code == 429
    assert limited.json()["error"]["message"] == "slow down"
    assert not_json.status_code == 400
    assert "not a JSON object" in not_json.text
    assert unknown.status_code == 404
    assert listing.json()["data"][0]["id"] == "fake-model"
    assert len(model.errors) == 2


def test_scripting_mistakes_are_reported_at_once() -> None:
    model = FakeModel()
    with pytest.raises(ValueError, match="when\\(\\) needs"):
        model.when()
    with pytest.raises(ValueError, match="times must be at least 1"):
        model.when(contains="x", times=0)
    with pytest.raises(ValueError, match="HTTP error status"):
        model.fail(200)
    with pytest.raises(TypeError, match="mapping or a JSON string"):
        model.call_tool("t", 5)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not serving"):
        _ = model.base_url


def test_rules_match_conditions_and_continue_with_their_steps() -> None:
    model = FakeModel()
    model.when(instructions_contains="SPANISH", times=None).reply("Hola")
    model.when(match=lambda r: r.api == "chat_completions").reply("chat")
    model.reply("plain")
    with model.serve():
        client = openai.OpenAI(base_url=model.base_url, api_key="k", max_retries=0)
        first = client.responses.create(model="m", instructions="Speak spanish", input="hi")
        second = client.responses.create(model="m", instructions="speak Spanish", input="again")
        third = client.responses.create(model="m", instructions="Speak english", input="hi")
        chat = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x"}]
        )
        client.close()
    assert [first.output_text, second.output_text, third.output_text] == ["Hola", "Hola", "plain"]
    assert chat.choices[0].message.content == "chat"


def test_a_tool_result_turn_does_not_trigger_a_contains_rule_again() -> None:
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object"}}
    model = FakeModel()
    model.when(contains="order").call_tool("lookup", {"id": 7}).reply("It shipped.")
    with model.serve():
        client = openai.OpenAI(base_url=model.base_url, api_key="k", max_retries=0)
        call = client.responses.create(model="m", input="where is my order?", tools=[tool])
        item = call.output[0]
        follow_up = client.responses.create(
            model="m",
            tools=[tool],
            input=[
                {"role": "user", "content": "where is my order?"},
                {
                    "type": "function_call",
                    "call_id": item.call_id,  # type: ignore[union-attr]
                    "name": "lookup",
                    "arguments": "{}",
                },
                {"type": "function_call_output", "call_id": "c", "output": "shipped"},
            ],
        )
        client.close()
    assert follow_up.output_text == "It shipped."
    assert model.requests[0].is_user_turn
    assert not model.requests[1].is_user_turn
    assert model.requests[1].user_text == "where is my order?"
    assert model.requests[1].tool_outputs == ("shipped",)
