"""A small ConversationRelay agent written for the caller's tests, served on loopback.

It plays the app's side: checks every Twilio signature with the official ``RequestValidator``,
answers ``/twiml`` with configurable TwiML, and on ``/ws`` reacts to prompts by keyword:

- ``story``: streams three tokens, then waits for the caller's ``interrupt`` and acknowledges it
- ``handoff``: a short reply, then ``end`` with :data:`HANDOFF_DATA`
- ``bye``: ``end`` without handoff data
- ``options``: ``play``, ``sendDigits``, ``language`` (es-MX), then a reply
- ``garbage N``: N malformed frames; ``garbage N then ok``: N, a valid reply, N again
- ``close``: closes the socket with 1011
- anything else: ``You said: <text>`` as word tokens, then ``""`` with ``last: true``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

import uvicorn
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse, Response
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

HANDOFF_DATA = json.dumps(
    {"reasonCode": "live-agent-handoff", "reason": "Caller asked for a person", "note": "é ✓"},
    indent=1,
)


def relay_twiml(
    ws_url: str,
    *,
    action: str | None = None,
    parameters: dict[str, str] | None = None,
    **attributes: str,
) -> str:
    """``<Response><Connect action><ConversationRelay url ...>`` with ``<Parameter>``s."""
    attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in {"url": ws_url, **attributes}.items())
    params = "".join(
        f"<Parameter name={quoteattr(k)} value={quoteattr(v)} />"
        for k, v in (parameters or {}).items()
    )
    connect = f" action={quoteattr(action)}" if action else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        f"<Connect{connect}><ConversationRelay {attrs}>{params}</ConversationRelay></Connect>"
        "</Response>"
    )


@dataclass
class AgentState:
    """What the test agent saw; tests read it and set ``twiml``."""

    auth_token: str
    base_url: str = ""
    check_signatures: bool = True
    close_after_accept: int | None = None
    twiml: Callable[[AgentState], str] | None = None
    twiml_status: int = 200
    twiml_requests: list[dict[str, Any]] = field(default_factory=list)
    ws_signature_ok: list[bool] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    close_codes: list[int] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    call_events: list[dict[str, Any]] = field(default_factory=list)
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self, auth_token: str) -> None:
        """Forget everything seen (one server serves a whole test module)."""
        self.auth_token = auth_token
        self.twiml = None
        self.twiml_status = 200
        self.close_after_accept = None
        for seen in (self.twiml_requests, self.ws_signature_ok, self.frames, self.close_codes):
            seen.clear()
        self.callbacks.clear()
        self.call_events.clear()
        self.interrupted = asyncio.Event()

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws"

    def default_twiml(self, **attributes: str) -> str:
        return relay_twiml(
            self.ws_url, action=f"{self.base_url}/conversation-relay-callback", **attributes
        )

    def received(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == kind]


def _form_valid(validator: RequestValidator, request: Request, form: FormData) -> bool:
    signature = request.headers.get("x-twilio-signature", "")
    return bool(validator.validate(str(request.url), dict(form), signature))


def agent_app(state: AgentState) -> FastAPI:
    app = FastAPI()

    @app.post("/twiml")
    async def twiml(request: Request) -> Response:
        form = await request.form()
        valid = _form_valid(RequestValidator(state.auth_token), request, form)
        state.twiml_requests.append({"fields": dict(form), "signature_ok": valid})
        if not valid and state.check_signatures:
            return PlainTextResponse("bad signature", status_code=403)
        if state.twiml_status != 200:
            return PlainTextResponse("agent exploded", status_code=state.twiml_status)
        body = state.twiml(state) if state.twiml else state.default_twiml()
        return Response(body, media_type="application/xml")

    @app.post("/conversation-relay-callback")
    async def callback(request: Request) -> Response:
        form = await request.form()
        state.callbacks.append(
            {
                "fields": dict(form),
                "signature_ok": _form_valid(RequestValidator(state.auth_token), request, form),
            }
        )
        return Response("<Response><Say>Goodbye</Say><Hangup/></Response>", media_type="text/xml")

    @app.post("/call-events/{kind}")
    async def call_event(kind: str, request: Request) -> Response:
        form = await request.form()
        state.call_events.append(
            {
                "kind": kind,
                "fields": dict(form),
                "signature_ok": _form_valid(RequestValidator(state.auth_token), request, form),
            }
        )
        return Response(status_code=204)

    @app.websocket("/ws")
    async def relay(websocket: WebSocket) -> None:
        # The scheme as uvicorn sees it: wss when a TLS edge says X-Forwarded-Proto: https.
        url = f"{websocket.url.scheme}://{websocket.headers['host']}{websocket.url.path}"
        params = dict(websocket.query_params)
        signature = websocket.headers.get("x-twilio-signature", "")
        valid = bool(RequestValidator(state.auth_token).validate(url, params, signature))
        state.ws_signature_ok.append(valid)
        if not valid and state.check_signatures:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        if state.close_after_accept is not None:
            await websocket.close(code=state.close_after_accept)
            return
        try:
            await _converse(websocket, state)
        except WebSocketDisconnect as exc:
            state.close_codes.append(exc.code)

    return app


async def _send(ws: WebSocket, frame: dict[str, Any]) -> None:
    await ws.send_text(json.dumps(frame))


async def _converse(ws: WebSocket, state: AgentState) -> None:
    while True:
        frame = json.loads(await ws.receive_text())
        state.frames.append(frame)
        kind = frame.get("type")
        if kind == "interrupt":
            state.interrupted.set()
            await _send(ws, {"type": "text", "token": "", "last": True})
        elif kind == "dtmf":
            await _send(
                ws, {"type": "text", "token": f"You pressed {frame['digit']}", "last": True}
            )
        elif kind == "prompt" and frame.get("last", True):
            await _answer(ws, state, str(frame["voicePrompt"]))


async def _answer(ws: WebSocket, state: AgentState, text: str) -> None:
    words = text.split()
    if text == "story":
        for token in ("Once ", "upon ", "a time"):
            await _send(ws, {"type": "text", "token": token, "last": False})
    elif text == "handoff":
        await _send(ws, {"type": "text", "token": "Transferring you.", "last": True})
        await _send(ws, {"type": "end", "handoffData": HANDOFF_DATA})
    elif text == "bye":
        await _send(ws, {"type": "end"})
    elif text == "close":
        await ws.close(code=1011)
        raise WebSocketDisconnect(1011)
    elif text == "options":
        await _send(ws, {"type": "play", "source": "https://example.com/hold.mp3", "loop": 2})
        await _send(ws, {"type": "sendDigits", "digits": "9ww1"})
        await _send(ws, {"type": "language", "transcriptionLanguage": "es-MX"})
        await _send(ws, {"type": "text", "token": "Hola", "lang": "es-MX", "last": True})
    elif words and words[0] == "garbage":
        count = int(words[1])
        for index in range(count):
            await ws.send_text("not json" if index % 2 else json.dumps({"type": "shout"}))
        if "ok" in words:
            await _send(ws, {"type": "text", "token": "still here", "last": True})
            for _ in range(count):
                await _send(ws, {"type": "text"})
    else:
        tokens = ["You ", "said: "] + [w + " " for w in words[:-1]] + words[-1:]
        for token in tokens:
            await _send(ws, {"type": "text", "token": token, "last": False})
        await _send(ws, {"type": "text", "token": "", "last": True})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def loopback_socket() -> socket.socket:
    """A socket bound to a free loopback port (TCP_NODELAY: no 40 ms delayed-ACK stalls)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serve(app: Any, sock: socket.socket | None = None) -> AsyncIterator[str]:
    """Serve ``app`` on ``sock`` (default: a free loopback port); yields its base URL."""
    sock = sock or loopback_socket()
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
