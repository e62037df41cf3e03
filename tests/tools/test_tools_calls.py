"""Calling tools: validation and coercion, structured errors, injection, threads, results."""

from __future__ import annotations

import dataclasses
import inspect
import json
import threading
from datetime import datetime, timezone
from enum import Enum
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from tac.models.session import ConversationSession
from tac.tools import InjectedToolArg, TACTool, create_tool, function_tool
from tac.tools import base as tools_base

pytestmark = pytest.mark.unit


class Address(BaseModel):
    street: str
    city: str


def _session(conversation_id: str = "conv_1") -> ConversationSession:
    return ConversationSession(conversation_id=conversation_id, channel="sms")


def test_function_tool_is_importable_from_base_and_package() -> None:
    assert tools_base.function_tool is function_tool
    assert tools_base.TACTool is TACTool


async def test_arguments_are_coerced_to_declared_types() -> None:
    seen: dict[str, Any] = {}

    @function_tool
    async def book(nights: int, address: Address, ratio: float = 0.5) -> str:
        """Book a stay."""
        seen.update(nights=nights, address=address, ratio=ratio)
        return "booked"

    result = await book(nights="5", address={"street": "1 Main", "city": "Oslo"})
    assert result == "booked"
    assert seen["nights"] == 5
    assert isinstance(seen["address"], Address)
    assert seen["address"].city == "Oslo"
    assert seen["ratio"] == 0.5


async def test_null_for_an_optional_non_nullable_param_means_its_default() -> None:
    @function_tool
    def repeat(word: str, times: int = 2, suffix: str | None = "!") -> str:
        """Repeat a word."""
        return word * times + (suffix or "")

    # Strict mode makes the LLM send every property; null then means "use the default"
    # unless the type itself accepts null.
    assert await repeat(word="a", times=None, suffix=None) == "aa"
    assert await repeat(word="a") == "aa!"


async def test_validation_errors_come_back_as_structured_results() -> None:
    @function_tool
    async def book(nights: int, address: Address) -> str:
        """Book a stay."""
        raise AssertionError("must not run")

    result = await book(nights="many", address={"street": "1 Main"}, extra=1)
    assert result["error"]["type"] == "validation_error"
    assert result["error"]["message"] == "invalid arguments for tool 'book'"
    problems = {(tuple(d["loc"]), d["type"]) for d in result["error"]["details"]}
    assert problems == {
        (("nights",), "int_parsing"),
        (("address", "city"), "missing"),
        (("extra",), "extra_forbidden"),
    }
    json.dumps(result)


async def test_exceptions_in_the_tool_come_back_as_tool_errors() -> None:
    @function_tool
    def explode(reason: str) -> str:
        """Fail on purpose."""
        raise RuntimeError(f"boom: {reason}")

    result = await explode(reason="test")
    assert result == {"error": {"type": "tool_error", "message": "RuntimeError: boom: test"}}


async def test_injected_values_cannot_be_overridden_by_the_llm() -> None:
    seen: list[tuple[str, str]] = []

    @function_tool
    async def whoami(
        question: str,
        session: ConversationSession,
        tenant: Annotated[str, InjectedToolArg],
    ) -> str:
        """Say who is asking."""
        seen.append((session.conversation_id, tenant))
        return f"{session.conversation_id}/{tenant}"

    assert set(whoami.params_json_schema["properties"]) == {"question"}
    tool = whoami.configure_injection(session=_session("conv_real"), tenant="acme")
    result = await tool(question="?", session={"conversation_id": "conv_evil"}, tenant="evil")
    assert result == "conv_real/acme"
    result = await tool.invoke('{"question": "?", "tenant": "evil"}')
    assert json.loads(result) == "conv_real/acme"
    assert seen == [("conv_real", "acme"), ("conv_real", "acme")]


async def test_configure_injection_returns_a_copy() -> None:
    @function_tool
    def where(session: ConversationSession) -> str:
        """Tell the conversation id."""
        return session.conversation_id

    configured = where.configure_injection(session=_session("conv_a"))
    assert configured is not where
    assert configured.injected_values["session"].conversation_id == "conv_a"
    assert where.injected_values == {}
    assert await configured() == "conv_a"
    unconfigured = await where()
    assert unconfigured["error"]["type"] == "tool_error"
    assert "session" in unconfigured["error"]["message"]


def test_configure_injection_rejects_unknown_names_and_wrong_types() -> None:
    @function_tool
    def where(question: str, session: ConversationSession) -> str:
        """Tell the conversation id."""
        return session.conversation_id

    with pytest.raises(ValueError, match="'question' is not an injected parameter"):
        where.configure_injection(question="x")
    with pytest.raises(ValueError, match="'nope' is not an injected parameter"):
        where.configure_injection(nope=1)
    with pytest.raises(TypeError, match="'session' must be ConversationSession, got dict"):
        where.configure_injection(session={"conversation_id": "c", "channel": "sms"})


async def test_optional_injected_value_works_unset() -> None:
    @function_tool
    def profile(session: ConversationSession | None = None) -> str | None:
        """Tell the profile id."""
        return session.profile_id if session else "none"

    assert await profile() == "none"
    assert profile.configure_injection(session=None).injected_values == {"session": None}


async def test_sync_tools_run_in_a_worker_thread() -> None:
    threads: list[int] = []

    @function_tool
    def blocking(x: int) -> int:
        """Do blocking work."""
        threads.append(threading.get_ident())
        return x * 2

    assert await blocking(x=21) == 42
    assert threads[0] != threading.get_ident()


async def test_async_tools_run_on_the_event_loop_thread() -> None:
    threads: list[int] = []

    @function_tool
    async def quick(x: int) -> int:
        """Do async work."""
        threads.append(threading.get_ident())
        return x

    assert await quick(x=1) == 1
    assert threads == [threading.get_ident()]


class Mood(Enum):
    HAPPY = "happy"


@dataclasses.dataclass
class Booking:
    id: str
    at: datetime
    mood: Mood
    address: Address


async def test_results_are_json_serialisable() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    @function_tool
    def fetch() -> dict[str, Any]:
        """Fetch things."""
        return {
            "booking": Booking("b1", when, Mood.HAPPY, Address(street="s", city="c")),
            "model": Address(street="x", city="y"),
            "when": when,
            "tags": {"a"},
            "opaque": object.__new__(_Opaque),
        }

    result = await fetch()
    assert json.loads(json.dumps(result)) == result
    assert result["booking"] == {
        "id": "b1",
        "at": "2026-01-02T03:04:05Z",
        "mood": "happy",
        "address": {"street": "s", "city": "c"},
    }
    assert result["model"] == {"street": "x", "city": "y"}
    assert result["tags"] == ["a"]
    assert result["opaque"] == "<opaque>"


class _Opaque:
    def __str__(self) -> str:
        return "<opaque>"


async def test_invoke_handles_bad_json_and_non_objects() -> None:
    @function_tool
    def echo(text: str) -> str:
        """Echo text."""
        return text

    assert json.loads(await echo.invoke('{"text": "hi"}')) == "hi"
    assert json.loads(await echo.invoke({"text": "hi"})) == "hi"
    bad = json.loads(await echo.invoke("{not json"))
    assert bad["error"]["type"] == "validation_error"
    assert "not valid JSON" in bad["error"]["message"]
    assert json.loads(await echo.invoke("[1]"))["error"]["message"] == (
        "arguments must be a JSON object"
    )


async def test_implementation_has_a_clean_signature_and_raises() -> None:
    @function_tool
    async def greet(name: str, session: ConversationSession, loud: bool = False) -> str:
        """Greet someone."""
        text = f"hi {name} in {session.conversation_id}"
        return text.upper() if loud else text

    tool = greet.configure_injection(session=_session("c9"))
    impl = tool.implementation
    assert list(inspect.signature(impl).parameters) == ["name", "loud"]
    assert impl.__name__ == "greet"
    assert await impl(name="ann", loud=True) == "HI ANN IN C9"
    with pytest.raises(ValueError, match="name"):
        await impl(loud=True)
    with pytest.raises(TypeError, match="no value injected for session"):
        await greet.implementation(name="ann")


def test_decorator_forms_name_and_description() -> None:
    @function_tool
    def bare(x: int) -> int:
        """Bare form.

        More detail on a second paragraph.

        Args:
            x: A number
                spanning two lines.

        Returns:
            The number.
        """
        return x

    @function_tool(name="custom", description="Custom description.")
    def with_options(x: int) -> int:
        return x

    @function_tool("positional")
    def positional(x: int) -> int:
        """Positional name."""
        return x

    assert bare.name == "bare"
    assert bare.description == "Bare form.\n\nMore detail on a second paragraph."
    assert bare.params_json_schema["properties"]["x"]["description"] == (
        "A number spanning two lines."
    )
    assert (with_options.name, with_options.description) == ("custom", "Custom description.")
    assert positional.name == "positional"


def test_field_description_in_annotated_wins_over_docstring() -> None:
    @function_tool
    def f(x: Annotated[int, Field(description="from Field", ge=0)]) -> int:
        """Do it.

        Args:
            x: from docstring
        """
        return x

    assert f.params_json_schema["properties"]["x"] == {
        "description": "from Field",
        "minimum": 0,
        "type": "integer",
    }


def _no_doc(x: int) -> int:
    return x


def _untyped(x):  # type: ignore[no-untyped-def]
    """Untyped."""
    return x


def _var_kw(**kwargs: int) -> int:
    """Var kw."""
    return 0


def _bad_type(x: threading.Lock) -> int:
    """Bad type."""
    return 0


def _doc_typo(x: int) -> int:
    """Doc typo.

    Args:
        y: not a parameter
    """
    return x


@pytest.mark.parametrize(
    ("func", "kwargs", "error", "message"),
    [
        (_no_doc, {}, ValueError, "tool '_no_doc' has no description"),
        (_untyped, {}, TypeError, "parameter 'x' needs a type annotation"),
        (_var_kw, {}, TypeError, r"\*args/\*\*kwargs parameter 'kwargs'"),
        (_bad_type, {}, TypeError, "'_bad_type': its parameters cannot be described as JSON"),
        (_doc_typo, {}, ValueError, "documents unknown parameter"),
        (_no_doc, {"name": "has space", "description": "d"}, ValueError, "tool name 'has space'"),
    ],
)
def test_bad_definitions_fail_at_decoration_time(
    func: Any, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        function_tool(**kwargs)(func) if kwargs else function_tool(func)


async def test_parameter_names_that_shadow_pydantic_attributes_work() -> None:
    @function_tool
    def odd(json: str, model_config: int, schema: bool = False) -> str:
        """Odd names."""
        return f"{json}{model_config}{schema}"

    assert set(odd.params_json_schema["properties"]) == {"json", "model_config", "schema"}
    assert await odd(json="j", model_config="3") == "j3False"


async def test_create_tool_checks_required_and_unknown_and_injects() -> None:
    def lookup(order_id: str, session: ConversationSession, verbose: bool = False) -> str:
        return f"{order_id}:{session.conversation_id}:{verbose}"

    tool = create_tool(
        "lookup",
        "Look up an order.",
        {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "verbose": {"type": "boolean"}},
            "required": ["order_id"],
            "additionalProperties": False,
        },
        lookup,
    ).configure_injection(session=_session("c7"))
    assert await tool(order_id="o1", verbose=None) == "o1:c7:False"
    missing = await tool(verbose=True, other=1)
    assert missing["error"]["type"] == "validation_error"
    assert {(tuple(d["loc"]), d["type"]) for d in missing["error"]["details"]} == {
        (("order_id",), "missing"),
        (("other",), "extra_forbidden"),
    }


def test_create_tool_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="description must be a non-empty string"):
        create_tool("t", " ", {"type": "object"}, lambda: None)
    with pytest.raises(ValueError, match="must describe an object"):
        create_tool("t", "d", {"type": "string"}, lambda: None)
    with pytest.raises(TypeError, match="implementation must be callable"):
        create_tool("t", "d", {"type": "object"}, "nope")  # type: ignore[arg-type]


async def test_tactool_constructor_matches_create_tool() -> None:
    tool = TACTool(
        name="double",
        description="Double a number.",
        params_json_schema={"type": "object", "properties": {"x": {"type": "integer"}}},
        implementation=lambda x: x * 2,
    )
    assert (tool.name, tool.description) == ("double", "Double a number.")
    assert await tool(x=4) == 8


async def test_unexpected_errors_in_validators_are_tool_errors() -> None:
    from pydantic import field_validator

    class Picky(BaseModel):
        value: str

        @field_validator("value")
        @classmethod
        def _boom(cls, value: str) -> str:
            raise KeyError(value)

    def run(item: Picky) -> str:
        """Run it."""
        return item.value

    tool = function_tool(run)
    result = await tool(item={"value": "x"})
    assert result == {"error": {"type": "tool_error", "message": "KeyError: 'x'"}}


async def test_an_argument_named_self_is_just_an_unknown_argument() -> None:
    @function_tool
    def echo(text: str) -> str:
        """Echo text."""
        return text

    result = await echo(text="hi", self="x")
    assert result["error"]["details"][0]["loc"] == ["self"]


async def test_unserialisable_results_become_tool_errors() -> None:
    @function_tool
    def loop() -> list[Any]:
        """Return a cycle."""
        cycle: list[Any] = []
        cycle.append(cycle)
        return cycle

    result = await loop()
    assert result["error"]["type"] == "tool_error"
    assert result["error"]["message"].startswith("the result cannot be serialised to JSON")


class Line(BaseModel):
    sku: str
    quantity: int = 1
    gift_note: str | None = "none"


async def test_null_defaults_apply_inside_nested_models_and_lists() -> None:
    seen: list[Line] = []

    @function_tool
    def order(lines: list[Line], primary: Line | None = None) -> int:
        """Order items."""
        seen.extend(lines)
        return len(lines)

    strict = order.to_openai_format()["function"]["parameters"]["$defs"]["Line"]
    assert strict["required"] == ["sku", "quantity", "gift_note"]
    assert await order(lines=[{"sku": "a", "quantity": None, "gift_note": None}], primary=None) == 1
    assert seen == [Line(sku="a", quantity=1, gift_note=None)]


def test_docstring_args_with_types_and_other_sections() -> None:
    from tac.tools._schema import parse_docstring

    description, params = parse_docstring(
        """Summary line.

        Args:
            city (str): The city.
            days (int, optional): How many
                days ahead.
            **kwargs: Ignored.

        Raises:
            ValueError: never documented as a parameter.
        """
    )
    assert description == "Summary line."
    assert params == {"city": "The city.", "days": "How many days ahead.", "kwargs": "Ignored."}
    assert parse_docstring(None) == (None, {})
