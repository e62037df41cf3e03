"""Provider formats: golden output for one rich tool; each provider's rules checked generically."""

from __future__ import annotations

import json
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from tac.models.session import ConversationSession
from tac.tools import InjectedToolArg, TACTool, create_tool, function_tool

pytestmark = pytest.mark.unit


class Priority(str, Enum):
    LOW = "low"
    HIGH = "high"


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str
    zip_code: str | None = None


@function_tool
async def create_ticket(
    title: str,
    address: Address,
    priority: Priority,
    channel: Literal["sms", "voice"],
    tags: list[str],
    session: ConversationSession,
    tenant: Annotated[str, InjectedToolArg],
    note: str | None = None,
    count: int = 1,
) -> dict[str, Any]:
    """Open a support ticket for the customer.

    Args:
        title: Short summary of the problem.
        address: Where the customer is.
        priority: How urgent it is.
        channel: Where to follow up.
        tags: Labels for routing.
        session: The conversation (injected).
        tenant: The tenant (injected).
        note: Anything else worth knowing.
        count: How many tickets.
    """
    return {}


NAME = "create_ticket"
DESCRIPTION = "Open a support ticket for the customer."

# The regular JSON schema (Anthropic, Bedrock, Realtime, params_json_schema).
REGULAR = {
    "$defs": {
        "Address": {
            "description": "A postal address.",
            "properties": {
                "street": {"type": "string"},
                "city": {"type": "string"},
                "zip_code": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            },
            "required": ["street", "city"],
            "type": "object",
        },
        "Priority": {"enum": ["low", "high"], "type": "string"},
    },
    "additionalProperties": False,
    "properties": {
        "title": {"description": "Short summary of the problem.", "type": "string"},
        "address": {"$ref": "#/$defs/Address", "description": "Where the customer is."},
        "priority": {"$ref": "#/$defs/Priority", "description": "How urgent it is."},
        "channel": {
            "description": "Where to follow up.",
            "enum": ["sms", "voice"],
            "type": "string",
        },
        "tags": {
            "description": "Labels for routing.",
            "items": {"type": "string"},
            "type": "array",
        },
        "note": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "default": None,
            "description": "Anything else worth knowing.",
        },
        "count": {"default": 1, "description": "How many tickets.", "type": "integer"},
    },
    "required": ["title", "address", "priority", "channel", "tags"],
    "type": "object",
}

# OpenAI strict mode: all required, optionals nullable, every object closed, $ref with siblings
# inlined (OpenAI rejects keywords beside a $ref), $defs kept at the top level.
STRICT_ADDRESS = {
    "description": "A postal address.",
    "properties": {
        "street": {"type": "string"},
        "city": {"type": "string"},
        "zip_code": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["street", "city", "zip_code"],
    "type": "object",
    "additionalProperties": False,
}
STRICT = {
    "$defs": {
        "Address": STRICT_ADDRESS,
        "Priority": {"enum": ["low", "high"], "type": "string"},
    },
    "additionalProperties": False,
    "properties": {
        "title": {"description": "Short summary of the problem.", "type": "string"},
        "address": {**STRICT_ADDRESS, "description": "Where the customer is."},
        "priority": {"enum": ["low", "high"], "type": "string", "description": "How urgent it is."},
        "channel": {
            "description": "Where to follow up.",
            "enum": ["sms", "voice"],
            "type": "string",
        },
        "tags": {
            "description": "Labels for routing.",
            "items": {"type": "string"},
            "type": "array",
        },
        "note": {
            "anyOf": [{"type": "string"}, {"type": "null"}],
            "description": "Anything else worth knowing.",
        },
        "count": {"description": "How many tickets.", "type": ["integer", "null"]},
    },
    "required": ["title", "address", "priority", "channel", "tags", "note", "count"],
    "type": "object",
}

GEMINI = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "description": "Short summary of the problem."},
        "address": {
            "type": "object",
            "description": "Where the customer is.",
            "properties": {
                "street": {"type": "string"},
                "city": {"type": "string"},
                "zip_code": {"type": "string", "nullable": True},
            },
            "required": ["street", "city"],
        },
        "priority": {"type": "string", "enum": ["low", "high"], "description": "How urgent it is."},
        "channel": {
            "type": "string",
            "enum": ["sms", "voice"],
            "description": "Where to follow up.",
        },
        "tags": {
            "type": "array",
            "description": "Labels for routing.",
            "items": {"type": "string"},
        },
        "note": {"type": "string", "description": "Anything else worth knowing.", "nullable": True},
        "count": {"type": "integer", "description": "How many tickets."},
    },
    "required": ["title", "address", "priority", "channel", "tags"],
}


def test_params_json_schema_is_the_regular_schema_without_injected_params() -> None:
    assert create_ticket.params_json_schema == REGULAR


def test_openai_chat_completions_format() -> None:
    assert create_ticket.to_openai_format() == {
        "type": "function",
        "function": {
            "name": NAME,
            "description": DESCRIPTION,
            "parameters": STRICT,
            "strict": True,
        },
    }


def test_responses_format() -> None:
    assert create_ticket.to_responses_format() == {
        "type": "function",
        "name": NAME,
        "description": DESCRIPTION,
        "parameters": STRICT,
        "strict": True,
    }


def test_realtime_format_has_no_strict_flag() -> None:
    assert create_ticket.to_realtime_format() == {
        "type": "function",
        "name": NAME,
        "description": DESCRIPTION,
        "parameters": REGULAR,
    }


def test_anthropic_format() -> None:
    assert create_ticket.to_anthropic_format() == {
        "name": NAME,
        "description": DESCRIPTION,
        "input_schema": REGULAR,
    }


def test_bedrock_converse_format() -> None:
    assert create_ticket.to_bedrock_format() == {
        "toolSpec": {"name": NAME, "description": DESCRIPTION, "inputSchema": {"json": REGULAR}}
    }


def test_gemini_format() -> None:
    assert create_ticket.to_gemini_format() == {
        "name": NAME,
        "description": DESCRIPTION,
        "parameters": GEMINI,
    }


def test_to_json_is_the_openai_format_as_a_string() -> None:
    assert json.loads(create_ticket.to_json()) == create_ticket.to_openai_format()


def test_formats_are_copies() -> None:
    create_ticket.to_anthropic_format()["input_schema"]["properties"].clear()
    create_ticket.params_json_schema["properties"].clear()
    assert create_ticket.params_json_schema == REGULAR


# Generic provider rules -------------------------------------------------------------------


def _nodes(schema: Any, path: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (properties, items, unions, $defs)."""
    found: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(schema, dict):
        return found
    found.append((path, schema))
    for key in ("properties", "$defs"):
        for name, sub in (schema.get(key) or {}).items():
            found += _nodes(sub, f"{path}/{key}/{name}")
    if isinstance(schema.get("items"), dict):
        found += _nodes(schema["items"], f"{path}/items")
    for key in ("anyOf", "oneOf", "allOf"):
        for index, sub in enumerate(schema.get(key) or []):
            found += _nodes(sub, f"{path}/{key}/{index}")
    return found


def _resolves(root: dict[str, Any], ref: str) -> bool:
    assert ref.startswith("#/"), ref
    node: Any = root
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return isinstance(node, dict)


def check_openai_strict(schema: dict[str, Any]) -> None:
    assert schema["type"] == "object"
    for path, node in _nodes(schema):
        if path != "#":
            assert "$defs" not in node, f"{path}: $defs must stay at the top level"
        if "$ref" in node:
            assert _resolves(schema, node["$ref"]), f"{path}: dangling {node['$ref']}"
            assert set(node) == {"$ref"}, f"{path}: keywords beside $ref"
        if node.get("type") == "object" or "properties" in node:
            assert node.get("additionalProperties") is False, f"{path}: not closed"
            assert sorted(node["required"]) == sorted(node["properties"]), f"{path}: required"
        assert "default" not in node, f"{path}: default in strict schema"
        assert {"type", "$ref", "anyOf", "enum", "const"} & set(node), f"{path}: untyped"


def check_refs_resolve(schema: dict[str, Any]) -> None:
    for path, node in _nodes(schema):
        if "$ref" in node:
            assert _resolves(schema, node["$ref"]), f"{path}: dangling {node['$ref']}"


GEMINI_KEYS = {"type", "properties", "required", "items", "enum", "description", "nullable"}
GEMINI_KEYS |= {"format", "anyOf"}


def check_gemini(schema: dict[str, Any]) -> None:
    for path, node in _nodes(schema):
        assert set(node) <= GEMINI_KEYS, f"{path}: forbidden keys {set(node) - GEMINI_KEYS}"
        if "type" in node:
            assert isinstance(node["type"], str), f"{path}: type must be one name"
        if "required" in node:
            assert set(node["required"]) <= set(node["properties"]), path


class Item(BaseModel):
    sku: str
    quantity: int = 1
    kind: Literal[1, 2] = 1


class Tree(BaseModel):
    label: str
    children: list[Tree] = Field(default_factory=list)


class Color(Enum):
    RED = "red"
    BLUE = "blue"


@function_tool
def place_order(items: list[Item], gift: Item | None = None, when: datetime | None = None) -> str:
    """Place an order."""
    return "ok"


@function_tool(name="paint", description="Paint something.")
def paint(color: Color, shades: list[Color] | None = None, ratio: float | int = 1) -> str:
    return "ok"


@function_tool
def outline(tree: Tree) -> str:
    """Store an outline."""
    return "ok"


@function_tool
def ping() -> str:
    """Check the tool works."""
    return "pong"


TOOLS = [create_ticket, place_order, paint, outline, ping]


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_openai_strict_rules_hold_for_every_format(tool: TACTool) -> None:
    chat = tool.to_openai_format()["function"]
    assert chat["strict"] is True
    check_openai_strict(chat["parameters"])
    responses = tool.to_responses_format()
    assert responses["strict"] is True
    check_openai_strict(responses["parameters"])


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_the_agents_sdk_finds_nothing_to_change_in_the_strict_schema(tool: TACTool) -> None:
    from agents.strict_schema import ensure_strict_json_schema

    strict = tool.to_responses_format()["parameters"]
    assert ensure_strict_json_schema(json.loads(json.dumps(strict))) == strict


@pytest.mark.parametrize("tool", TOOLS, ids=lambda t: t.name)
def test_regular_schemas_keep_refs_resolvable(tool: TACTool) -> None:
    check_refs_resolve(tool.to_anthropic_format()["input_schema"])
    check_refs_resolve(tool.to_bedrock_format()["toolSpec"]["inputSchema"]["json"])
    check_refs_resolve(tool.to_realtime_format()["parameters"])


@pytest.mark.parametrize("tool", [t for t in TOOLS if t is not outline], ids=lambda t: t.name)
def test_gemini_schemas_use_only_the_openapi_subset(tool: TACTool) -> None:
    declaration = tool.to_gemini_format()
    if tool is ping:
        assert "parameters" not in declaration
    else:
        check_gemini(declaration["parameters"])


def test_gemini_optional_model_becomes_nullable_object() -> None:
    gift = place_order.to_gemini_format()["parameters"]["properties"]["gift"]
    assert gift["type"] == "object"
    assert gift["nullable"] is True
    assert gift["properties"]["kind"] == {"type": "integer", "enum": [1, 2]}
    when = place_order.to_gemini_format()["parameters"]["properties"]["when"]
    assert when == {"type": "string", "format": "date-time", "nullable": True}


def test_gemini_real_union_uses_any_of_of_single_types() -> None:
    ratio = paint.to_gemini_format()["parameters"]["properties"]["ratio"]
    assert ratio == {"anyOf": [{"type": "number"}, {"type": "integer"}]}


def test_gemini_rejects_recursive_models_clearly() -> None:
    with pytest.raises(ValueError, match=r"'outline'.*recursive model 'Tree'"):
        outline.to_gemini_format()


def test_recursive_model_is_strict_with_refs_into_defs() -> None:
    parameters = outline.to_openai_format()["function"]["parameters"]
    tree = parameters["$defs"]["Tree"]
    children = tree["properties"]["children"]
    assert children == {"items": {"$ref": "#/$defs/Tree"}, "type": ["array", "null"]}


def test_free_form_dict_falls_back_to_non_strict() -> None:
    @function_tool
    def tag(labels: dict[str, str]) -> str:
        """Tag things."""
        return "ok"

    chat = tag.to_openai_format()["function"]
    assert chat["strict"] is False
    assert chat["parameters"] == tag.params_json_schema
    assert tag.to_openai_agents_sdk_tool().strict_json_schema is False


def test_create_tool_schema_is_made_strict() -> None:
    tool = create_tool(
        "lookup",
        "Look up an order.",
        {
            "type": "object",
            "properties": {"order_id": {"type": "string"}, "verbose": {"type": "boolean"}},
            "required": ["order_id"],
        },
        lambda order_id, verbose=False: {"id": order_id},
    )
    parameters = tool.to_openai_format()["function"]["parameters"]
    check_openai_strict(parameters)
    assert parameters["properties"]["verbose"] == {"type": ["boolean", "null"]}
    assert tool.to_anthropic_format()["input_schema"]["required"] == ["order_id"]
