"""``to_openai_agents_sdk_tool()`` driven by the real OpenAI Agents SDK."""

from __future__ import annotations

import json
import sys

import pytest
from agents import Agent, FunctionTool, Runner, set_tracing_disabled
from agents.testing.model import ScriptedModel, assistant_message, function_call
from agents.tool_context import ToolContext
from pydantic import BaseModel

from tac.models.session import ConversationSession
from tac.tools.base import function_tool

pytestmark = pytest.mark.unit

set_tracing_disabled(True)


class Stay(BaseModel):
    city: str
    nights: int


@function_tool
async def book_stay(stay: Stay, session: ConversationSession, note: str | None = None) -> dict:
    """Book a stay for the customer.

    Args:
        stay: Where and how long.
        note: Anything to pass on.
    """
    return {"booked": stay, "conversation": session.conversation_id, "note": note}


def _tool() -> FunctionTool:
    session = ConversationSession(conversation_id="conv_42", channel="whatsapp")
    return book_stay.configure_injection(session=session).to_openai_agents_sdk_tool()


def _context(tool: FunctionTool, arguments: str) -> ToolContext[None]:
    return ToolContext(
        context=None, tool_name=tool.name, tool_call_id="call_1", tool_arguments=arguments
    )


def test_converted_tool_is_a_strict_function_tool() -> None:
    tool = _tool()
    assert isinstance(tool, FunctionTool)
    assert tool.name == "book_stay"
    assert tool.description == "Book a stay for the customer."
    assert tool.strict_json_schema is True
    assert tool.params_json_schema == book_stay.to_openai_format()["function"]["parameters"]
    assert "session" not in tool.params_json_schema["properties"]


async def test_on_invoke_tool_validates_calls_and_returns_json() -> None:
    tool = _tool()
    arguments = json.dumps({"stay": {"city": "Oslo", "nights": "3"}, "note": None})
    output = await tool.on_invoke_tool(_context(tool, arguments), arguments)
    assert json.loads(output) == {
        "booked": {"city": "Oslo", "nights": 3},
        "conversation": "conv_42",
        "note": None,
    }


@pytest.mark.parametrize(
    ("arguments", "kind"),
    [
        ("{broken", "validation_error"),
        ('{"stay": {"city": "Oslo"}, "note": null}', "validation_error"),
    ],
)
async def test_on_invoke_tool_never_raises(arguments: str, kind: str) -> None:
    tool = _tool()
    output = await tool.on_invoke_tool(_context(tool, arguments), arguments)
    assert json.loads(output)["error"]["type"] == kind


async def test_an_agent_run_calls_the_tool_and_sees_its_result() -> None:
    model = ScriptedModel(
        [
            [
                function_call(
                    "book_stay",
                    {"stay": {"city": "Rome", "nights": 2}, "note": "late"},
                    call_id="call_7",
                )
            ],
            [assistant_message("Booked Rome.")],
        ]
    )
    agent = Agent(name="Concierge", instructions="Book stays.", tools=[_tool()], model=model)
    result = await Runner.run(agent, "Book me Rome for two nights")
    assert result.final_output == "Booked Rome."
    model.assert_complete()
    second_input = model.calls[1].input
    outputs = [item for item in second_input if item.get("type") == "function_call_output"]
    assert len(outputs) == 1
    assert json.loads(outputs[0]["output"]) == {
        "booked": {"city": "Rome", "nights": 2},
        "conversation": "conv_42",
        "note": "late",
    }


def test_missing_agents_package_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "agents", None)
    with pytest.raises(ImportError, match=r'pip install "opentac\[openai\]"'):
        book_stay.to_openai_agents_sdk_tool()
