"""Tools an LLM can call: :func:`function_tool`, :func:`create_tool` and :class:`TACTool`.

A tool's schema comes from its Python signature: one pydantic model per tool validates the
LLM's arguments and produces every provider format. Parameters typed
:class:`~tac.models.session.ConversationSession`, or annotated ``Annotated[T, InjectedToolArg]``,
are filled by the application (:meth:`TACTool.configure_injection`) and never shown to, nor
taken from, the LLM.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Union, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from tac.core.logging import get_logger
from tac.models.session import ConversationSession
from tac.tools._schema import (
    SchemaNotStrictError,
    clean_schema,
    parse_docstring,
    prune_nulls,
    to_gemini_schema,
    to_strict_schema,
)

if TYPE_CHECKING:
    from agents import FunctionTool

__all__ = ["InjectedToolArg", "TACTool", "create_tool", "function_tool"]

logger = get_logger("tools")

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ARBITRARY = ConfigDict(arbitrary_types_allowed=True)


class InjectedToolArg:
    """Marks a parameter the application supplies: ``Annotated[T, InjectedToolArg]``.

    Injected parameters are left out of the schema the LLM sees and are set with
    :meth:`TACTool.configure_injection`; an LLM argument of the same name is ignored.
    """


def _value_model(annotation: Any) -> type[BaseModel]:
    return create_model("InjectedValue", __config__=_ARBITRARY, value=(annotation, ...))


@dataclass(frozen=True)
class _Injected:
    annotation: Any
    default: Any
    checker: type[BaseModel] | None

    @classmethod
    def of(cls, annotation: Any, default: Any) -> _Injected:
        try:
            return cls(annotation, default, _value_model(annotation))
        except Exception:
            return cls(annotation, default, None)

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is of the declared type (model types need an instance)."""
        options = [self.annotation]
        if typing.get_origin(self.annotation) in (Union, types.UnionType):
            options = list(typing.get_args(self.annotation))
        if all(isinstance(option, type) for option in options):
            return isinstance(value, tuple(options))
        if self.checker is None:
            return True
        try:
            self.checker.model_validate({"value": value}, strict=True)
        except ValidationError:
            return False
        return True


@dataclass(frozen=True)
class _Spec:
    """Everything about a tool that does not change when values are injected."""

    func: Callable[..., Any]
    is_async: bool
    schema: dict[str, Any]
    model: type[BaseModel] | None
    fields: dict[str, str]
    """LLM-visible parameter name → model field name."""
    injected: dict[str, _Injected]
    signature: inspect.Signature
    """The implementation's signature without injected parameters."""


def _error(kind: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "message": message}
    if details is not None:
        body["details"] = details
    return {"error": body}


def _jsonable(value: Any) -> Any:
    return to_jsonable_python(value, fallback=str)


class TACTool:
    """A tool: its name, description and JSON schema, and the code that runs it.

    Create one with :func:`function_tool`, or from an explicit schema with :func:`create_tool`
    (``TACTool(name, description, params_json_schema, implementation)`` does the same).
    Calling it (``await tool(**arguments)``) validates the LLM's arguments, runs the
    implementation (sync code in a worker thread) and returns a JSON-serialisable result; a bad
    argument or an exception comes back as
    ``{"error": {"type": "validation_error" | "tool_error", "message": ..., ...}}``.
    """

    __slots__ = ("_description", "_implementation", "_injected", "_name", "_spec")

    _name: str
    _description: str
    _spec: _Spec
    _injected: dict[str, Any]
    _implementation: Callable[..., Awaitable[Any]] | None

    def __init__(
        self,
        name: str,
        description: str,
        params_json_schema: Mapping[str, Any],
        implementation: Callable[..., Any],
    ) -> None:
        built = create_tool(name, description, params_json_schema, implementation)
        self._setup(built._name, built._description, built._spec, {})

    @classmethod
    def _create(
        cls, name: str, description: str, spec: _Spec, injected: Mapping[str, Any]
    ) -> TACTool:
        tool = cls.__new__(cls)
        tool._setup(name, description, spec, injected)
        return tool

    def _setup(self, name: str, description: str, spec: _Spec, injected: Mapping[str, Any]) -> None:
        self._name = name
        self._description = description
        self._spec = spec
        self._injected = dict(injected)
        self._implementation = None

    def __repr__(self) -> str:
        return f"TACTool(name={self._name!r})"

    @property
    def name(self) -> str:
        """The name the LLM calls the tool by."""
        return self._name

    @property
    def description(self) -> str:
        """What the tool does, for the LLM."""
        return self._description

    @property
    def params_json_schema(self) -> dict[str, Any]:
        """The parameters as a regular JSON schema (a copy; nested models under ``$defs``)."""
        return json.loads(json.dumps(self._spec.schema))  # type: ignore[no-any-return]

    @property
    def injected_values(self) -> dict[str, Any]:
        """The values configured for injected parameters (a copy)."""
        return dict(self._injected)

    @property
    def implementation(self) -> Callable[..., Awaitable[Any]]:
        """The implementation as an async callable over the LLM-visible parameters.

        Injected values are filled in and arguments validated; unlike calling the tool, errors
        are raised and the raw result is returned.
        """
        if self._implementation is None:

            async def implementation(**kwargs: Any) -> Any:
                values = self._validate(kwargs)
                return await self._run(values)

            implementation.__signature__ = self._spec.signature  # type: ignore[attr-defined]
            implementation.__name__ = self._name
            implementation.__qualname__ = self._name
            implementation.__doc__ = self._description
            self._implementation = implementation
        return self._implementation

    def configure_injection(self, **values: Any) -> TACTool:
        """Return a copy of this tool with values for its injected parameters.

        Raises ``ValueError`` for a name that is not an injected parameter and ``TypeError`` for
        a value of the wrong type.
        """
        for key, value in values.items():
            param = self._spec.injected.get(key)
            if param is None:
                injectable = ", ".join(sorted(self._spec.injected)) or "none"
                raise ValueError(
                    f"tool {self._name!r}: {key!r} is not an injected parameter "
                    f"(injected parameters: {injectable})"
                )
            if not param.accepts(value):
                raise TypeError(
                    f"tool {self._name!r}: injected value for {key!r} must be "
                    f"{_type_name(param.annotation)}, got {type(value).__name__}"
                )
        return TACTool._create(
            self._name, self._description, self._spec, {**self._injected, **values}
        )

    async def __call__(self, /, **kwargs: Any) -> Any:
        """Run the tool with the LLM's arguments; never raises for bad input or tool errors."""
        try:
            values = self._validate(kwargs)
        except ValidationError as exc:
            details = exc.errors(include_url=False, include_context=False, include_input=False)
            return _error(
                "validation_error",
                f"invalid arguments for tool {self._name!r}",
                _jsonable(details),
            )
        except _MissingInjection as exc:
            logger.error("tool %r: %s", self._name, exc)
            return _error("tool_error", f"tool {self._name!r} is not configured: {exc}")
        except Exception as exc:
            logger.warning("tool %r: validating arguments raised", self._name, exc_info=True)
            return _error("tool_error", f"{type(exc).__name__}: {exc}")
        try:
            result = await self._run(values)
        except Exception as exc:
            logger.warning("tool %r raised %s", self._name, type(exc).__name__, exc_info=True)
            return _error("tool_error", f"{type(exc).__name__}: {exc}")
        try:
            return _jsonable(result)
        except Exception as exc:
            logger.warning("tool %r returned an unserialisable result", self._name, exc_info=True)
            return _error("tool_error", f"the result cannot be serialised to JSON: {exc}")

    async def invoke(self, arguments: str | Mapping[str, Any] | None) -> str:
        """Run one tool call as an LLM sent it (a JSON object string); return a JSON string.

        Never raises for what the LLM sent: bad JSON or arguments come back as an error result.
        """
        if isinstance(arguments, str):
            try:
                parsed = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as exc:
                return _dumps(
                    _error("validation_error", f"arguments are not valid JSON: {exc.msg}", [])
                )
        else:
            parsed = dict(arguments or {})
        if not isinstance(parsed, dict):
            return _dumps(_error("validation_error", "arguments must be a JSON object", []))
        return _dumps(await self(**parsed))

    def _validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        spec = self._spec
        llm_args = dict(arguments)
        for key in spec.injected.keys() & llm_args.keys():
            logger.warning("tool %r: ignoring LLM value for injected parameter %r", self._name, key)
            del llm_args[key]
        llm_args = prune_nulls(llm_args, spec.schema, spec.schema.get("$defs", {}))
        values: dict[str, Any]
        if spec.model is not None:
            validated = spec.model.model_validate(llm_args)
            values = {name: getattr(validated, field) for name, field in spec.fields.items()}
        else:
            values = _check_against_schema(self._name, spec.schema, llm_args)
        missing = []
        for key, param in spec.injected.items():
            if key in self._injected:
                values[key] = self._injected[key]
            elif param.default is not inspect.Parameter.empty:
                values[key] = param.default
            else:
                missing.append(key)
        if missing:
            raise _MissingInjection(
                f"no value injected for {', '.join(missing)} (use configure_injection)"
            )
        return values

    async def _run(self, values: dict[str, Any]) -> Any:
        spec = self._spec
        if spec.is_async:
            result = spec.func(**values)
        else:
            result = await asyncio.to_thread(spec.func, **values)
        if inspect.isawaitable(result):
            result = await result
        return result

    # Provider formats -------------------------------------------------------------------

    def _strict(self) -> tuple[dict[str, Any], bool]:
        try:
            return to_strict_schema(self._spec.schema), True
        except SchemaNotStrictError as exc:
            logger.debug("tool %r is not strict-compatible (%s)", self._name, exc)
            return self.params_json_schema, False

    def to_openai_format(self) -> dict[str, Any]:
        """OpenAI Chat Completions: ``{"type": "function", "function": {...}}``, strict mode."""
        schema, strict = self._strict()
        return {
            "type": "function",
            "function": {
                "name": self._name,
                "description": self._description,
                "parameters": schema,
                "strict": strict,
            },
        }

    def to_responses_format(self) -> dict[str, Any]:
        """OpenAI Responses API: the flat ``{"type": "function", "name", ...}`` form, strict."""
        schema, strict = self._strict()
        return {
            "type": "function",
            "name": self._name,
            "description": self._description,
            "parameters": schema,
            "strict": strict,
        }

    def to_realtime_format(self) -> dict[str, Any]:
        """OpenAI Realtime ``session.tools`` entry (flat; Realtime has no ``strict`` flag)."""
        return {
            "type": "function",
            "name": self._name,
            "description": self._description,
            "parameters": self.params_json_schema,
        }

    def to_anthropic_format(self) -> dict[str, Any]:
        """Anthropic Messages API: ``{"name", "description", "input_schema"}``."""
        return {
            "name": self._name,
            "description": self._description,
            "input_schema": self.params_json_schema,
        }

    def to_bedrock_format(self) -> dict[str, Any]:
        """Amazon Bedrock Converse: ``{"toolSpec": {..., "inputSchema": {"json": ...}}}``."""
        return {
            "toolSpec": {
                "name": self._name,
                "description": self._description,
                "inputSchema": {"json": self.params_json_schema},
            }
        }

    def to_gemini_format(self) -> dict[str, Any]:
        """Gemini function declaration: ``{"name", "description", "parameters"}``.

        The schema is Gemini's OpenAPI subset: references inlined, ``Optional[X]`` as ``X``
        with ``nullable: true``. ``parameters`` is left out for a tool without parameters.
        Raises ``ValueError`` for a recursive model, which Gemini cannot express.
        """
        declaration: dict[str, Any] = {"name": self._name, "description": self._description}
        if self._spec.schema.get("properties"):
            try:
                declaration["parameters"] = to_gemini_schema(self._spec.schema)
            except ValueError as exc:
                raise ValueError(f"tool {self._name!r}: {exc}") from exc
        return declaration

    def to_json(self) -> str:
        """The OpenAI Chat Completions format as a JSON string."""
        return json.dumps(self.to_openai_format())

    def to_openai_agents_sdk_tool(self) -> FunctionTool:
        """An ``agents.FunctionTool`` for the OpenAI Agents SDK (``pip install "opentac[openai]"``).

        Its ``on_invoke_tool`` returns the result as a JSON string and never raises.
        """
        try:
            from agents import FunctionTool
        except ImportError as exc:
            raise ImportError(
                "to_openai_agents_sdk_tool() needs the OpenAI Agents SDK: "
                'pip install "opentac[openai]"'
            ) from exc

        async def on_invoke_tool(context: Any, arguments: str) -> str:
            return await self.invoke(arguments)

        schema, strict = self._strict()
        return FunctionTool(
            name=self._name,
            description=self._description,
            params_json_schema=schema,
            on_invoke_tool=on_invoke_tool,
            strict_json_schema=strict,
        )


class _MissingInjection(TypeError):
    """No value was configured for an injected parameter without a default."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


def _check_against_schema(
    tool: str, schema: Mapping[str, Any], arguments: dict[str, Any]
) -> dict[str, Any]:
    """Minimal checks for :func:`create_tool` tools: required present, no unknown names."""
    properties = schema.get("properties") or {}
    errors: list[dict[str, Any]] = [
        {"type": "missing", "loc": [key], "msg": "Field required"}
        for key in schema.get("required", ())
        if key not in arguments
    ]
    if schema.get("additionalProperties") is False:
        errors += [
            {"type": "extra_forbidden", "loc": [key], "msg": "Extra inputs are not permitted"}
            for key in arguments
            if key not in properties
        ]
    if errors:
        raise ValidationError.from_exception_data(
            tool,
            [
                {"type": e["type"], "loc": tuple(e["loc"]), "input": arguments.get(e["loc"][0])}
                for e in errors
            ],
        )
    return arguments


# Building tools --------------------------------------------------------------------------


def _unwrap_callable(func: Callable[..., Any]) -> Callable[..., Any]:
    while isinstance(func, functools.partial):
        func = func.func
    return func


def _is_async(func: Callable[..., Any]) -> bool:
    target = _unwrap_callable(func)
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(target, "__call__", None)  # noqa: B004
    return not inspect.isfunction(target) and inspect.iscoroutinefunction(call)


def _injection_of(annotation: Any) -> tuple[bool, Any]:
    """Whether a parameter is injected, and its type without the marker."""
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        marked = any(m is InjectedToolArg or isinstance(m, InjectedToolArg) for m in metadata)
        if marked:
            return True, base
        return _injection_of(base)[0], annotation
    return _is_session_type(annotation), annotation


def _is_session_type(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, ConversationSession)
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(args) == 1 and _is_session_type(args[0])
    return False


def _has_description(annotation: Any) -> bool:
    if typing.get_origin(annotation) is not Annotated:
        return False
    return any(isinstance(m, FieldInfo) and m.description for m in typing.get_args(annotation)[1:])


def _caller_locals() -> dict[str, Any]:
    """Locals of the nearest frame outside this package (where the tool was defined)."""
    frame = inspect.currentframe()
    try:
        while frame is not None and frame.f_globals.get("__name__", "").startswith("tac.tools"):
            frame = frame.f_back
        return dict(frame.f_locals) if frame is not None else {}
    finally:
        del frame


def _type_hints(func: Callable[..., Any], where: str) -> dict[str, Any]:
    """Resolve annotations, also against the defining scope (tools defined inside functions)."""
    try:
        return typing.get_type_hints(func, include_extras=True)
    except NameError:
        try:
            return typing.get_type_hints(func, localns=_caller_locals(), include_extras=True)
        except Exception as exc:
            raise TypeError(f"{where}: cannot resolve type hints: {exc}") from exc
    except Exception as exc:
        raise TypeError(f"{where}: cannot resolve type hints: {exc}") from exc


def _build_spec(func: Callable[..., Any], tool_name: str) -> tuple[_Spec, str | None]:
    """Build the validation model and schema from a function; fail clearly if it cannot."""
    where = f"tool {tool_name!r}"
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{where}: cannot read the signature of {func!r}") from exc
    hints = _type_hints(func, where)
    summary, param_docs = parse_docstring(inspect.getdoc(func))

    field_defs: dict[str, Any] = {}
    fields: dict[str, str] = {}
    injected: dict[str, _Injected] = {}
    visible: list[inspect.Parameter] = []
    for index, param in enumerate(signature.parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(f"{where}: *args/**kwargs parameter {param.name!r} is not supported")
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"{where}: positional-only parameter {param.name!r} is not supported")
        if param.name not in hints:
            raise TypeError(f"{where}: parameter {param.name!r} needs a type annotation")
        is_injected, annotation = _injection_of(hints[param.name])
        if is_injected:
            injected[param.name] = _Injected.of(annotation, param.default)
            continue
        field_name = f"p{index}"
        extra: dict[str, Any] = {"alias": param.name}
        if param.name in param_docs and not _has_description(annotation):
            extra["description"] = param_docs[param.name]
        if param.default is not param.empty:
            extra["default"] = param.default
        field_defs[field_name] = (annotation, Field(**extra))
        fields[param.name] = field_name
        visible.append(param.replace(annotation=annotation))

    unknown = set(param_docs) - set(signature.parameters)
    if unknown:
        raise ValueError(
            f"{where}: docstring documents unknown parameter(s) {', '.join(sorted(unknown))}"
        )
    try:
        model = create_model(
            f"{tool_name}_arguments",
            __config__=ConfigDict(extra="forbid", populate_by_name=False),
            **field_defs,
        )
        schema = clean_schema(model.model_json_schema(by_alias=True))
    except Exception as exc:
        raise TypeError(f"{where}: its parameters cannot be described as JSON: {exc}") from exc
    schema.pop("description", None)
    spec = _Spec(
        func=func,
        is_async=_is_async(func),
        schema=schema,
        model=model,
        fields=fields,
        injected=injected,
        signature=signature.replace(parameters=visible),
    )
    return spec, summary


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"tool name {name!r} is invalid: use 1-64 letters, digits, '_' or '-' "
            "(the limit LLM providers enforce)"
        )
    return name


def _make_tool(
    func: Callable[..., Any], name: str | None = None, description: str | None = None
) -> TACTool:
    if not callable(func):
        raise TypeError(f"function_tool needs a function, got {type(func).__name__}")
    tool_name = _check_name(
        name if name is not None else getattr(_unwrap_callable(func), "__name__", None)
    )
    spec, summary = _build_spec(func, tool_name)
    text = description if description is not None else summary
    if not text or not text.strip():
        raise ValueError(
            f"tool {tool_name!r} has no description: give the function a docstring or pass "
            "description=... to function_tool"
        )
    return TACTool._create(tool_name, text.strip(), spec, {})


@overload
def function_tool(name: Callable[..., Any], /) -> TACTool: ...


@overload
def function_tool(
    name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], TACTool]: ...


def function_tool(
    name: str | Callable[..., Any] | None = None, description: str | None = None
) -> TACTool | Callable[[Callable[..., Any]], TACTool]:
    """Turn a function (sync or async) into a :class:`TACTool`.

    Use bare (``@function_tool``) or with options (``@function_tool(name=..., description=...)``).
    The name defaults to the function's name, the description to its docstring (the text before
    ``Args:``); parameter descriptions come from the docstring's ``Args:`` section. A tool that
    cannot be described (no description, an unannotated parameter, a type with no JSON form)
    fails here, with a message naming the problem.
    """
    if callable(name) and not isinstance(name, str):
        return _make_tool(name)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"function_tool name must be a string, got {type(name).__name__}")

    def decorate(func: Callable[..., Any]) -> TACTool:
        return _make_tool(func, name, description)

    return decorate


def create_tool(
    name: str,
    description: str,
    params_json_schema: Mapping[str, Any],
    implementation: Callable[..., Any],
) -> TACTool:
    """Build a tool from an explicit JSON schema and an implementation (sync or async).

    The implementation receives the LLM's arguments as keyword arguments, plus any injected
    parameters it declares (``ConversationSession`` or ``Annotated[T, InjectedToolArg]``).
    Arguments are checked for required and unknown names only.
    """
    _check_name(name)
    if not isinstance(description, str) or not description.strip():
        raise ValueError(f"tool {name!r}: description must be a non-empty string")
    if not callable(implementation):
        raise TypeError(f"tool {name!r}: implementation must be callable")
    schema = json.loads(json.dumps(dict(params_json_schema)))
    if schema.get("type", "object") != "object":
        raise ValueError(f"tool {name!r}: params_json_schema must describe an object")
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    injected: dict[str, _Injected] = {}
    try:
        signature = inspect.signature(implementation)
    except (TypeError, ValueError):
        signature = inspect.Signature()
    try:
        hints = _type_hints(implementation, f"tool {name!r}")
    except TypeError:
        hints = {}
    for param in signature.parameters.values():
        if param.name in hints:
            is_injected, annotation = _injection_of(hints[param.name])
            if is_injected:
                injected[param.name] = _Injected.of(annotation, param.default)
    visible = [p for p in signature.parameters.values() if p.name not in injected]
    spec = _Spec(
        func=implementation,
        is_async=_is_async(implementation),
        schema=schema,
        model=None,
        fields={},
        injected=injected,
        signature=signature.replace(parameters=visible),
    )
    return TACTool._create(name, description.strip(), spec, {})
