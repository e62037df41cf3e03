"""JSON-schema plumbing for tools: docstrings, cleaning, and each provider's schema rules."""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from tac._errors import TACError

__all__ = [
    "SchemaNotStrictError",
    "allows_null",
    "clean_schema",
    "parse_docstring",
    "prune_nulls",
    "to_gemini_schema",
    "to_strict_schema",
]

JsonSchema = dict[str, Any]

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Returns|Return|Raises|"
    r"Yields|Examples?|Notes?|Attributes|See Also|Warnings?|Todo|References)\s*:\s*$"
)
_ARG_SECTIONS = {"Args", "Arguments", "Parameters", "Params", "Keyword Args", "Keyword Arguments"}
_ARG_ENTRY = re.compile(r"^\*{0,2}(?P<name>\w+)\s*(\([^)]*\))?\s*:\s*(?P<text>.*)$")


def parse_docstring(doc: str | None) -> tuple[str | None, dict[str, str]]:
    """Split a Google-style docstring into its description and its ``Args:`` entries."""
    if not doc or not doc.strip():
        return None, {}
    lines = inspect.cleandoc(doc).splitlines()
    description: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    entry_indent: int | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        header = _SECTION.match(line) if indent == 0 else None
        if header:
            section, entry_indent, current = header.group(1), None, None
            continue
        if section is None:
            description.append(line)
            continue
        if section not in _ARG_SECTIONS or not stripped:
            continue
        if entry_indent is None:
            entry_indent = indent
        entry = _ARG_ENTRY.match(stripped) if indent <= entry_indent else None
        if entry:
            current = entry.group("name")
            params[current] = entry.group("text").strip()
        elif current is not None:
            params[current] = f"{params[current]} {stripped}".strip()
    text = "\n".join(description).strip()
    return (text or None), params


def _subschemas(node: JsonSchema) -> Iterator[tuple[Any, Any]]:
    """Yield ``(container, key)`` for every sub-schema slot of one schema node."""
    for key in ("properties", "$defs", "definitions", "patternProperties"):
        value = node.get(key)
        if isinstance(value, dict):
            for name in value:
                yield value, name
    for key in ("items", "additionalProperties", "not", "contains", "propertyNames"):
        if isinstance(node.get(key), dict):
            yield node, key
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        value = node.get(key)
        if isinstance(value, list):
            for index in range(len(value)):
                yield value, index
    if isinstance(node.get("items"), list):
        for index in range(len(node["items"])):
            yield node["items"], index


def _walk(node: Any, visit: Callable[[JsonSchema], None]) -> None:
    if not isinstance(node, dict):
        return
    visit(node)
    for container, key in list(_subschemas(node)):
        _walk(container[key], visit)


def clean_schema(schema: JsonSchema) -> JsonSchema:
    """Drop pydantic's generated ``title`` keywords (noise for an LLM), keeping everything else."""
    result = copy.deepcopy(schema)
    _walk(result, lambda node: node.pop("title", None))
    return result


def _resolve(node: JsonSchema, defs: Mapping[str, Any]) -> JsonSchema:
    seen: set[str] = set()
    while isinstance(node.get("$ref"), str):
        name = _ref_name(node["$ref"])
        if name in seen or name not in defs:
            return node
        seen.add(name)
        node = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _ref_name(ref: str) -> str:
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def allows_null(node: Any, defs: Mapping[str, Any]) -> bool:
    """Whether ``null`` is a valid value for this schema."""
    if not isinstance(node, dict):
        return bool(node)
    node = _resolve(node, defs)
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if node.get("nullable") is True:
        return True
    for key in ("anyOf", "oneOf"):
        if any(allows_null(branch, defs) for branch in node.get(key, ())):
            return True
    if "enum" in node:
        return None in node["enum"]
    if "const" in node:
        return node["const"] is None
    constrained = {"type", "anyOf", "oneOf", "allOf", "$ref", "not", "properties", "items"}
    return not constrained & node.keys()


def prune_nulls(value: Any, schema: Any, defs: Mapping[str, Any]) -> Any:
    """Drop ``null`` given for an optional property whose type does not accept ``null``.

    Strict schemas make every optional property nullable; ``null`` then means "use the default".
    """
    if not isinstance(schema, dict):
        return value
    schema = _resolve(schema, defs)
    if isinstance(value, dict) and isinstance(schema.get("properties"), dict):
        properties: dict[str, Any] = schema["properties"]
        required = set(schema.get("required", ()))
        pruned: dict[str, Any] = {}
        for key, item in value.items():
            sub = properties.get(key)
            optional = sub is not None and key not in required
            if item is None and optional and not allows_null(sub, defs):
                continue
            pruned[key] = prune_nulls(item, sub, defs) if sub is not None else item
        return pruned
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune_nulls(item, schema["items"], defs) for item in value]
    if value is not None and isinstance(schema.get("anyOf"), list):
        branches = [b for b in schema["anyOf"] if not _is_null_schema(b)]
        if len(branches) == 1:
            return prune_nulls(value, branches[0], defs)
    return value


def _is_null_schema(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null"


class SchemaNotStrictError(TACError, ValueError):
    """The schema cannot be expressed in OpenAI's strict mode (e.g. a free-form ``dict``)."""


_SIMPLE_TYPES = {"string", "integer", "number", "boolean", "array", "object"}


def _nullable(node: JsonSchema, defs: Mapping[str, Any]) -> JsonSchema:
    if allows_null(node, defs):
        return node
    kind = node.get("type")
    simple = {"type", "description", "format", "items", "properties", "required"}
    simple |= {"additionalProperties", "minimum", "maximum", "pattern"}
    if isinstance(kind, str) and kind in _SIMPLE_TYPES and node.keys() <= simple:
        return {**node, "type": [kind, "null"]}
    outer = {k: node[k] for k in ("description",) if k in node}
    inner = {k: v for k, v in node.items() if k not in outer}
    return {"anyOf": [inner, {"type": "null"}], **outer}


def to_strict_schema(schema: JsonSchema) -> JsonSchema:
    """OpenAI strict mode: every object closed and fully required; optional ⇒ nullable.

    ``$defs`` stay at the top level and every ``$ref`` stays resolvable. Raises
    :class:`SchemaNotStrictError` when the schema cannot be made strict.
    """
    root = copy.deepcopy(schema)
    defs: dict[str, Any] = root.get("$defs", {})

    def visit(node: JsonSchema) -> None:
        node.pop("discriminator", None)
        if "oneOf" in node:
            node["anyOf"] = node.pop("oneOf")
        if "allOf" in node:
            parts = node.pop("allOf")
            if len(parts) != 1:
                raise SchemaNotStrictError("allOf with several schemas is not supported")
            node.update({**parts[0], **node})
        if "$ref" in node and len(node) > 1:
            target = defs.get(_ref_name(node["$ref"]))
            if target is None:
                raise SchemaNotStrictError(f"unresolvable $ref {node['$ref']!r}")
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node.clear()
            node.update({**copy.deepcopy(target), **siblings})
        node.pop("default", None)
        if node.get("type") == "object" or "properties" in node:
            extra = node.get("additionalProperties", False)
            if extra is not False:
                raise SchemaNotStrictError("free-form objects (dict types) cannot be strict")
            properties: dict[str, Any] = node.setdefault("properties", {})
            required = set(node.get("required", ()))
            for key, prop in properties.items():
                if key not in required and isinstance(prop, dict):
                    prop.pop("default", None)
                    properties[key] = _nullable(prop, defs)
            node["type"] = "object"
            node["required"] = list(properties)
            node["additionalProperties"] = False
        if not {"type", "$ref", "anyOf", "enum", "const"} & node.keys():
            raise SchemaNotStrictError("a value of any type cannot be strict")

    _walk(root, visit)
    return root


_GEMINI_FORMATS = {
    "string": {"enum", "date-time"},
    "number": {"float", "double"},
    "integer": {"int32", "int64"},
}


def to_gemini_schema(schema: JsonSchema) -> JsonSchema:
    """Gemini's OpenAPI subset: refs inlined; only ``type``, ``properties``, ``required``,
    ``items``, ``enum``, ``description``, ``nullable``, ``format`` (and ``anyOf`` for unions)."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def convert(node: Any, stack: tuple[str, ...]) -> JsonSchema:
        if not isinstance(node, dict):
            return {}
        if "$ref" in node:
            name = _ref_name(node["$ref"])
            if name in stack:
                raise ValueError(f"recursive model {name!r} cannot be expressed for Gemini")
            if name not in defs:
                raise ValueError(f"unresolvable $ref {node['$ref']!r}")
            merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
            return convert(merged, (*stack, name))
        if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
            rest = {k: v for k, v in node.items() if k != "allOf"}
            return convert({**node["allOf"][0], **rest}, stack)
        union = node.get("anyOf", node.get("oneOf"))
        if isinstance(union, list):
            rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
            nullable = any(_is_null_schema(b) for b in union)
            branches = [b for b in union if not _is_null_schema(b)]
            result: JsonSchema
            if len(branches) == 1:
                result = convert({**branches[0], **_keep(rest, "description")}, stack)
            else:
                result = {"anyOf": [convert(b, stack) for b in branches]}
                result.update(_keep(rest, "description"))
            if nullable:
                result["nullable"] = True
            return result
        out: JsonSchema = {}
        kind = node.get("type")
        if isinstance(kind, list):
            types = [t for t in kind if t != "null"]
            if "null" in kind:
                out["nullable"] = True
            if len(types) == 1:
                kind = types[0]
            else:
                rest = {k: v for k, v in node.items() if k not in ("type", "description")}
                out["anyOf"] = [convert({**rest, "type": t}, stack) for t in types]
                out.update(_keep(node, "description"))
                return out
        if kind is not None:
            out["type"] = kind
        if "const" in node:
            out["enum"] = [node["const"]]
        if "enum" in node:
            out["enum"] = [v for v in node["enum"] if v is not None]
            if None in node["enum"]:
                out["nullable"] = True
        if "enum" in out and "type" not in out and all(isinstance(v, str) for v in out["enum"]):
            out["type"] = "string"
        fmt = node.get("format")
        if isinstance(kind, str) and fmt in _GEMINI_FORMATS.get(kind, ()):
            out["format"] = fmt
        if "description" in node:
            out["description"] = node["description"]
        if node.get("nullable") is True:
            out["nullable"] = True
        if isinstance(node.get("properties"), dict):
            out["properties"] = {k: convert(v, stack) for k, v in node["properties"].items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        if isinstance(node.get("items"), dict):
            out["items"] = convert(node["items"], stack)
        return out

    return convert(schema, ())


def _keep(node: Mapping[str, Any], *keys: str) -> JsonSchema:
    return {k: node[k] for k in keys if k in node}
