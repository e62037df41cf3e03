"""A scripted, OpenAI-compatible model server for tests.

:class:`FakeModel` serves the Responses API (``POST /v1/responses``) and Chat Completions
(``POST /v1/chat/completions``), plain or streamed (SSE), on loopback. Its answers are scripted
per test; every request is recorded, and a request the script does not expect, or a step left
unused, fails the test::

    model = FakeModel()
    model.reply("Hola!")
    model.when(contains="human").call_tool("handoff", {"reason": "customer asked"}).reply(
        "Transferring you now."
    )
    async with model.serve():
        os.environ.update(model.env())  # OPENAI_BASE_URL and OPENAI_API_KEY
        ...  # run your agent (openai, openai-agents, anything OpenAI-compatible)
    assert "spanish" in model.requests[0].instructions

A request is answered by, in order: the rest of a rule that is under way (a tool call and the
reply after its result), the first rule whose condition matches, or the next scripted step.
The server runs in a background thread, so the same model serves async clients, sync clients
and programs started in a subprocess (give them :meth:`FakeModel.env`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tac.testing._serving import START_TIMEOUT as _START_TIMEOUT
from tac.testing._serving import LoopbackServing, bind_loopback

__all__ = [
    "FakeModel",
    "FakeModelError",
    "ModelRequest",
    "ModelRule",
    "UnconsumedModelSteps",
    "UnexpectedModelRequest",
]

Api = Literal["responses", "chat_completions"]

_WORDS = re.compile(r"\S+\s*|\s+")


class FakeModelError(AssertionError):
    """The model was used other than the test scripted it."""


class UnexpectedModelRequest(FakeModelError):
    """A request arrived that no step or rule answers (or that a step cannot answer)."""


class UnconsumedModelSteps(FakeModelError):
    """The test ended with scripted steps or rules never used."""


@dataclass(frozen=True)
class ModelRequest:
    """One request the model received, parsed for assertions (``body`` has it all)."""

    index: int
    api: Api
    body: dict[str, Any]
    model: str
    stream: bool
    instructions: str
    """The system and developer text (``instructions`` and system/developer messages)."""
    messages: tuple[tuple[str, str], ...]
    """``(role, text)`` of every message in the input, in order (tool results as ``"tool"``)."""
    tools: tuple[str, ...]
    """Names of the function tools offered."""
    tool_outputs: tuple[str, ...]
    """Outputs of tool calls sent back in the input, in order."""
    user_text: str
    """The text of the last user message ("" when there is none)."""
    is_user_turn: bool
    """True when the input ends with a user message (not with a tool result)."""

    def text(self) -> str:
        """Everything the model was shown, as one string (for ``in`` checks)."""
        return "\n".join([self.instructions, *(text for _, text in self.messages)])


@dataclass(frozen=True)
class _Step:
    kind: Literal["reply", "tool", "fail"]
    text: str = ""
    name: str = ""
    arguments: str = "{}"
    status: int = 500
    origin: str = "script"

    def describe(self) -> str:
        if self.kind == "reply":
            return f"reply({self.text!r})"
        if self.kind == "tool":
            return f"call_tool({self.name!r}, {self.arguments})"
        return f"fail({self.status}, {self.text!r})"


def _tool_step(name: str, arguments: Mapping[str, Any] | str | None, origin: str) -> _Step:
    if not isinstance(name, str) or not name:
        raise ValueError("call_tool needs the tool's name")
    if arguments is None:
        encoded = "{}"
    elif isinstance(arguments, str):
        encoded = arguments
    elif isinstance(arguments, Mapping):
        encoded = json.dumps(dict(arguments))
    else:
        raise TypeError(f"arguments must be a mapping or a JSON string, got {type(arguments)}")
    return _Step("tool", name=name, arguments=encoded, origin=origin)


def _fail_step(status: int, message: str, origin: str) -> _Step:
    if not 400 <= status <= 599:
        raise ValueError(f"fail() needs an HTTP error status (400-599), got {status}")
    return _Step("fail", text=message, status=status, origin=origin)


def _reply_step(text: str, origin: str) -> _Step:
    if not isinstance(text, str):
        raise TypeError(f"reply() needs a str, got {type(text).__name__}")
    return _Step("reply", text=text, origin=origin)


@dataclass
class ModelRule:
    """Steps played when a request matches a condition (build with :meth:`FakeModel.when`).

    The first step answers the matching request; the following steps answer the requests
    after it (typically: a tool call, then the reply once the tool's result comes back).
    """

    _model: FakeModel
    _label: str
    _condition: Callable[[ModelRequest], bool]
    _times: int | None
    _steps: list[_Step] = field(default_factory=list)
    _fired: int = 0

    def reply(self, text: str) -> ModelRule:
        """Answer with assistant text."""
        with self._model._lock:
            self._steps.append(_reply_step(text, self._label))
        return self

    def call_tool(self, name: str, arguments: Mapping[str, Any] | str | None = None) -> ModelRule:
        """Answer with a call of tool ``name`` (which the request must offer)."""
        with self._model._lock:
            self._steps.append(_tool_step(name, arguments, self._label))
        return self

    def fail(self, status: int = 500, message: str = "scripted failure") -> ModelRule:
        """Answer with an HTTP error (note: clients retry 429 and 5xx)."""
        with self._model._lock:
            self._steps.append(_fail_step(status, message, self._label))
        return self

    def _available(self) -> bool:
        return self._times is None or self._fired < self._times


class _Serving(LoopbackServing["FakeModel"]):
    """The running server of one :class:`FakeModel`: a context manager, sync or async."""

    def __init__(self, model: FakeModel, host: str, port: int, check: bool) -> None:
        super().__init__(model, host, port, check)
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._failure: BaseException | None = None

    def start(self) -> FakeModel:
        import uvicorn

        if self._model._serving is not None:
            raise RuntimeError("this FakeModel is already serving")
        sock, host, port = bind_loopback(self._host, self._port)
        config = uvicorn.Config(
            self._model._asgi,
            log_level="warning",
            lifespan="off",
            interface="asgi3",
            access_log=False,
        )
        self._server = uvicorn.Server(config)

        def run() -> None:
            try:
                asyncio.run(self._server.serve(sockets=[sock]))
            except BaseException as exc:  # surfaced by start()
                self._failure = exc
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="fake-model", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if self._failure is not None or not self._thread.is_alive():
                raise RuntimeError(f"FakeModel server failed to start: {self._failure!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("FakeModel server did not start in time")
            time.sleep(0.005)
        self._model._serving = self
        self._model._base_url = f"http://{host}:{port}/v1"
        return self._model

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT)
        self._model._serving = None


class _ServeCall(Protocol):
    def __call__(
        self, *, host: str = "127.0.0.1", port: int = 0, check: bool = True
    ) -> _Serving: ...


class _ServeMethod:
    """``model.serve(...)``; on the class, ``FakeModel.serve(...)`` serves a new model."""

    def __get__(self, obj: FakeModel | None, owner: type[FakeModel]) -> _ServeCall:
        model = obj if obj is not None else owner()

        def serve(*, host: str = "127.0.0.1", port: int = 0, check: bool = True) -> _Serving:
            """Serve on loopback (a free port by default), with ``with`` or ``async with``.

            Leaving the block stops the server and, when ``check`` and the block raised
            nothing, calls :meth:`FakeModel.assert_complete`.
            """
            return _Serving(model, host, port, check)

        return serve


class FakeModel:
    """A scripted OpenAI-compatible model: script it, :meth:`serve` it, inspect :attr:`requests`.

    Scripted steps (:meth:`reply`, :meth:`call_tool`, :meth:`fail`) answer requests in order;
    rules (:meth:`when`) answer requests that match a condition, whenever they come.
    """

    def __init__(self, *, model_name: str = "fake-model") -> None:
        self.model_name = model_name
        self._lock = threading.RLock()
        self._steps: list[_Step] = []
        self._rules: list[ModelRule] = []
        self._pending: list[_Step] = []
        self._requests: list[ModelRequest] = []
        self._errors: list[str] = []
        self._ids = itertools.count(1)
        self._serving: _Serving | None = None
        self._base_url: str | None = None

    # -- scripting -------------------------------------------------------------------------

    def reply(self, text: str) -> FakeModel:
        """Script the next answer: assistant text."""
        with self._lock:
            self._steps.append(_reply_step(text, "script"))
        return self

    def call_tool(self, name: str, arguments: Mapping[str, Any] | str | None = None) -> FakeModel:
        """Script the next answer: a call of tool ``name`` with ``arguments``.

        The request must offer a function tool of that name, else it fails as unexpected.
        """
        with self._lock:
            self._steps.append(_tool_step(name, arguments, "script"))
        return self

    def fail(self, status: int = 500, message: str = "scripted failure") -> FakeModel:
        """Script the next answer: an HTTP error (clients retry 429 and 5xx on their own)."""
        with self._lock:
            self._steps.append(_fail_step(status, message, "script"))
        return self

    def when(
        self,
        *,
        contains: str | None = None,
        instructions_contains: str | None = None,
        match: Callable[[ModelRequest], bool] | None = None,
        times: int | None = 1,
    ) -> ModelRule:
        """A rule: answer requests that meet every given condition with the rule's steps.

        ``contains`` matches a user turn whose last user message contains the text,
        ``instructions_contains`` the system/developer text (both ignore case); ``match`` is
        any predicate. The rule fires at most ``times`` times (``None``: no limit).
        """
        if contains is None and instructions_contains is None and match is None:
            raise ValueError("when() needs contains=, instructions_contains= or match=")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None), got {times}")
        conditions: list[Callable[[ModelRequest], bool]] = []
        parts: list[str] = []
        if contains is not None:
            needle = contains.lower()
            conditions.append(lambda r: r.is_user_turn and needle in r.user_text.lower())
            parts.append(f"contains={contains!r}")
        if instructions_contains is not None:
            wanted = instructions_contains.lower()
            conditions.append(lambda r: wanted in r.instructions.lower())
            parts.append(f"instructions_contains={instructions_contains!r}")
        if match is not None:
            conditions.append(match)
            parts.append(f"match={getattr(match, '__name__', 'predicate')}")
        label = f"when({', '.join(parts)})"
        rule = ModelRule(self, label, lambda r: all(c(r) for c in conditions), times)
        with self._lock:
            self._rules.append(rule)
        return rule

    # -- inspection ------------------------------------------------------------------------

    @property
    def requests(self) -> tuple[ModelRequest, ...]:
        """Every request received, in order."""
        with self._lock:
            return tuple(self._requests)

    @property
    def last_request(self) -> ModelRequest | None:
        with self._lock:
            return self._requests[-1] if self._requests else None

    @property
    def remaining_steps(self) -> int:
        """Scripted steps not used yet (rules not counted)."""
        with self._lock:
            return len(self._steps)

    @property
    def errors(self) -> tuple[str, ...]:
        """Why requests were refused as unexpected, in order."""
        with self._lock:
            return tuple(self._errors)

    def assert_complete(self) -> None:
        """Fail if a request was unexpected, or a step or rule was never used."""
        with self._lock:
            if self._errors:
                raise UnexpectedModelRequest("; ".join(self._errors))
            unused = [step.describe() for step in self._steps]
            unused += [f"{step.origin}.{step.describe()}" for step in self._pending]
            unused += [f"{rule._label} (never matched)" for rule in self._rules if not rule._fired]
        if unused:
            raise UnconsumedModelSteps("scripted but never used: " + ", ".join(unused))

    # -- serving ---------------------------------------------------------------------------

    serve = _ServeMethod()

    @property
    def base_url(self) -> str:
        """The ``OPENAI_BASE_URL`` of the running server (``http://127.0.0.1:PORT/v1``)."""
        if self._base_url is None or self._serving is None:
            raise RuntimeError("the FakeModel is not serving: use `with model.serve():`")
        return self._base_url

    def env(self, api_key: str = "sk-fake-model") -> dict[str, str]:
        """``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` for clients (and subprocesses)."""
        return {"OPENAI_BASE_URL": self.base_url, "OPENAI_API_KEY": api_key}

    # -- answering -------------------------------------------------------------------------

    def _next_step(self, request: ModelRequest) -> _Step | str:
        """The step answering ``request``, or why none does."""
        with self._lock:
            self._requests.append(request)
            if self._pending:
                return self._pending.pop(0)
            for rule in self._rules:
                if rule._available() and rule._steps and rule._condition(request):
                    rule._fired += 1
                    first, *rest = rule._steps
                    self._pending = list(rest)
                    return first
            if self._steps:
                return self._steps.pop(0)
        return "no scripted step or rule left"

    def _refuse(self, request_index: int, what: str, reason: str) -> dict[str, Any]:
        message = f"FakeModel: unexpected request #{request_index} ({what}): {reason}"
        with self._lock:
            self._errors.append(message)
        return {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": "fake_model_unexpected_request",
            }
        }

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        method = scope["method"]
        path = scope["path"].rstrip("/")
        if method == "GET" and path == "/v1/models":
            listing = {"object": "list", "data": [_model_entry(self.model_name)]}
            await _send_json(send, 200, listing)
            return
        if method == "POST" and path in ("/v1/responses", "/v1/chat/completions"):
            await self._answer(path, body, send)
            return
        with self._lock:
            index = len(self._requests)
        await _send_json(send, 404, self._refuse(index, f"{method} {path}", "no such endpoint"))

    async def _answer(self, path: str, raw: bytes, send: Any) -> None:
        api: Api = "responses" if path == "/v1/responses" else "chat_completions"
        with self._lock:
            index = len(self._requests)
        try:
            payload = json.loads(raw or b"null")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            await _send_json(send, 400, self._refuse(index, path, "the body is not a JSON object"))
            return
        request = _parse_request(index, api, payload)
        step = self._next_step(request)
        if isinstance(step, str):
            await _send_json(send, 400, self._refuse(index, _summary(request), step))
            return
        if step.kind == "fail":
            error = {"error": {"message": step.text, "type": "server_error", "code": None}}
            await _send_json(send, step.status, error)
            return
        if step.kind == "tool" and step.name not in request.tools:
            offered = ", ".join(request.tools) or "none"
            reason = f"{step.describe()} but the request offers no tool {step.name!r} ({offered})"
            await _send_json(send, 400, self._refuse(index, _summary(request), reason))
            return
        if api == "responses":
            response = self._response_object(request, step)
            if request.stream:
                await _send_sse(send, _response_events(response))
            else:
                await _send_json(send, 200, response)
        else:
            completion_id = self._new_id("chatcmpl")
            call_id = self._new_id("call")
            if request.stream:
                chunks = _chat_chunks(request, step, completion_id, call_id)
                await _send_sse(send, ((None, chunk) for chunk in chunks), done=True)
            else:
                await _send_json(send, 200, _chat_completion(request, step, completion_id, call_id))

    def _response_object(self, request: ModelRequest, step: _Step) -> dict[str, Any]:
        if step.kind == "reply":
            item: dict[str, Any] = {
                "type": "message",
                "id": self._new_id("msg"),
                "status": "completed",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": step.text, "annotations": [], "logprobs": []}
                ],
            }
        else:
            item = {
                "type": "function_call",
                "id": self._new_id("fc"),
                "call_id": self._new_id("call"),
                "name": step.name,
                "arguments": step.arguments,
                "status": "completed",
            }
        body = request.body
        output_tokens = _tokens(step.text or step.arguments)
        input_tokens = _tokens(request.text())
        return {
            "id": self._new_id("resp"),
            "object": "response",
            "created_at": time.time(),
            "status": "completed",
            "model": request.model,
            "output": [item],
            "instructions": body.get("instructions"),
            "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
            "tool_choice": body.get("tool_choice") or "auto",
            "tools": body.get("tools") or [],
            "temperature": body.get("temperature"),
            "top_p": body.get("top_p"),
            "error": None,
            "incomplete_details": None,
            "metadata": {},
            "text": {"format": {"type": "text"}},
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
        }


# -- request parsing ------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    """Text of a message's content: a string, or a list of parts with ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, str):
                texts.append(part)
        return "".join(texts)
    return ""


def _parse_request(index: int, api: Api, body: dict[str, Any]) -> ModelRequest:
    instructions: list[str] = []
    messages: list[tuple[str, str]] = []
    tool_outputs: list[str] = []
    tools: list[str] = []
    last_kind = ""
    if api == "responses":
        if isinstance(body.get("instructions"), str):
            instructions.append(body["instructions"])
        items = body.get("input")
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, Mapping):
                continue
            kind = item.get("type")
            if kind == "function_call_output":
                output = item.get("output")
                text = output if isinstance(output, str) else _content_text(output)
                tool_outputs.append(text)
                messages.append(("tool", text))
                last_kind = "tool"
            elif kind == "function_call":
                last_kind = "tool_call"
            elif "role" in item:
                role = str(item["role"])
                text = _content_text(item.get("content"))
                messages.append((role, text))
                if role in ("system", "developer"):
                    instructions.append(text)
                last_kind = role
        for tool in body.get("tools") or []:
            if isinstance(tool, Mapping) and tool.get("type") == "function":
                tools.append(str(tool.get("name")))
    else:
        for message in body.get("messages") or []:
            if not isinstance(message, Mapping):
                continue
            role = str(message.get("role"))
            text = _content_text(message.get("content"))
            messages.append((role, text))
            if role in ("system", "developer"):
                instructions.append(text)
            if role == "tool":
                tool_outputs.append(text)
            last_kind = role
        for tool in body.get("tools") or []:
            if isinstance(tool, Mapping) and isinstance(tool.get("function"), Mapping):
                tools.append(str(tool["function"].get("name")))
    user_texts = [text for role, text in messages if role == "user"]
    return ModelRequest(
        index=index,
        api=api,
        body=body,
        model=str(body.get("model") or ""),
        stream=bool(body.get("stream")),
        instructions="\n".join(instructions),
        messages=tuple(messages),
        tools=tuple(tools),
        tool_outputs=tuple(tool_outputs),
        user_text=user_texts[-1] if user_texts else "",
        is_user_turn=last_kind == "user",
    )


def _summary(request: ModelRequest) -> str:
    last = request.user_text if len(request.user_text) <= 60 else request.user_text[:57] + "..."
    return f"{request.api}, last user message {last!r}"


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _chunks_of(text: str) -> list[str]:
    return _WORDS.findall(text) or [""]


def _model_entry(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "opentac"}


# -- Responses API streaming ----------------------------------------------------------------


def _response_events(response: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """The SSE events of a streamed Responses API answer, ending with ``response.completed``."""
    events: list[dict[str, Any]] = []
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    events.append({"type": "response.created", "response": pending})
    events.append({"type": "response.in_progress", "response": pending})
    for output_index, item in enumerate(response["output"]):
        item_id = item["id"]
        if item["type"] == "message":
            text = item["content"][0]["text"]
            started = {**item, "status": "in_progress", "content": []}
            empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": output_index,
                    "item": started,
                }
            )
            events.append(
                {
                    "type": "response.content_part.added",
                    "item_id": item_id,
                    "output_index": output_index,
                    "content_index": 0,
                    "part": empty_part,
                }
            )
            for chunk in _chunks_of(text):
                events.append(
                    {
                        "type": "response.output_text.delta",
                        "item_id": item_id,
                        "output_index": output_index,
                        "content_index": 0,
                        "delta": chunk,
                        "logprobs": [],
                    }
                )
            events.append(
                {
                    "type": "response.output_text.done",
                    "item_id": item_id,
                    "output_index": output_index,
                    "content_index": 0,
                    "text": text,
                    "logprobs": [],
                }
            )
            events.append(
                {
                    "type": "response.content_part.done",
                    "item_id": item_id,
                    "output_index": output_index,
                    "content_index": 0,
                    "part": item["content"][0],
                }
            )
        else:
            started = {**item, "status": "in_progress", "arguments": ""}
            events.append(
                {
                    "type": "response.output_item.added",
                    "output_index": output_index,
                    "item": started,
                }
            )
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": item_id,
                    "output_index": output_index,
                    "delta": item["arguments"],
                }
            )
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item_id,
                    "output_index": output_index,
                    "arguments": item["arguments"],
                    "name": item["name"],
                }
            )
        events.append(
            {"type": "response.output_item.done", "output_index": output_index, "item": item}
        )
    events.append({"type": "response.completed", "response": response})
    numbered: list[tuple[str | None, dict[str, Any]]] = []
    for number, event in enumerate(events):
        numbered.append((event["type"], {**event, "sequence_number": number}))
    return numbered


# -- Chat Completions -----------------------------------------------------------------------


def _chat_completion(
    request: ModelRequest, step: _Step, completion_id: str, call_id: str
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
    if step.kind == "reply":
        message["content"] = step.text
        finish = "stop"
    else:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": step.name, "arguments": step.arguments},
            }
        ]
        finish = "tool_calls"
    prompt_tokens = _tokens(request.text())
    completion_tokens = _tokens(step.text or step.arguments)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _chat_chunks(
    request: ModelRequest, step: _Step, completion_id: str, call_id: str
) -> list[dict[str, Any]]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    chunks = [chunk({"role": "assistant", "content": ""})]
    if step.kind == "reply":
        chunks += [chunk({"content": piece}) for piece in _chunks_of(step.text)]
        chunks.append(chunk({}, "stop"))
    else:
        call = {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": step.name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [call]}))
        arguments = {"index": 0, "function": {"arguments": step.arguments}}
        chunks.append(chunk({"tool_calls": [arguments]}))
        chunks.append(chunk({}, "tool_calls"))
    options = request.body.get("stream_options")
    if isinstance(options, Mapping) and options.get("include_usage"):
        final = _chat_completion(request, step, completion_id, call_id)
        chunks.append({**chunk({}), "choices": [], "usage": final["usage"]})
    return chunks


# -- ASGI helpers ---------------------------------------------------------------------------


async def _send_json(send: Any, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def _send_sse(
    send: Any,
    events: Any,
    *,
    done: bool = False,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream"),
                (b"cache-control", b"no-cache"),
                (b"connection", b"close"),
            ],
        }
    )
    async for frame in _sse_frames(events, done):
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _sse_frames(events: Any, done: bool) -> AsyncIterator[bytes]:
    for name, payload in events:
        prefix = f"event: {name}\n" if name else ""
        yield f"{prefix}data: {json.dumps(payload)}\n\n".encode()
    if done:
        yield b"data: [DONE]\n\n"
