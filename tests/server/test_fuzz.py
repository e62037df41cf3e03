"""Property-based fuzzing of every route and the ConversationRelay WebSocket (hypothesis).

One real app (uvicorn on loopback, served with the server's limits) runs in a thread of its own
for the whole module; hypothesis sends it signed and unsigned requests and frames of every
shape. Properties: never a 5xx for what a client sent, never a hang (every answer or close
within a bound), no exception inside the server, and a normal call keeps getting its turns
answered throughout (a caller in another thread talks to the agent while the fuzzing runs).

Bounded: ``OPENTAC_FUZZ_EXAMPLES`` examples per route (default 150), derandomized so that a
failure reproduces; a run takes well under a minute.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from tests.intelligence.test_intelligence_processor import CONFIGURATION
from tests.intelligence.test_intelligence_webhook import FakeTwilio
from tests.voice._harness import ACCOUNT, AGENT_NUMBER, FROM, VoiceApp
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tac.channels.voice import VoiceChannelConfig
from tac.models.conversation import KNOWN_EVENT_TYPES

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("OPENTAC_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
ANSWER_WITHIN = 10.0  # seconds: longer means the server hung on the input
CLEAN_CLOSES = {1000, 1001, 1007, 1008, 1009}


class Running:
    """The app in a thread of its own, plus what went wrong inside it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.twilio = FakeTwilio()
        self.app = VoiceApp(
            # the Orchestrator is configured (Conversation Intelligence needs it) but has no
            # conversations for these calls: look them up once, without waiting
            config=VoiceChannelConfig(orchestrator_lookup_timeout=0),
            transport=self.twilio.transport,
            api_base_url="http://twilio.test",
            conversation_configuration_id="conv_configuration_x",
            conversation_intelligence_config={"configuration_id": CONFIGURATION},
        )
        self.errors: list[str] = []
        self.app.tac.on_message_ready(lambda message, session, memory: f"you said {message}")
        self.app.tac.on_error(lambda exc, context: self.errors.append(f"{exc!r} {context}"))
        self.run(self.app.__aenter__())
        self.http = httpx.Client(base_url=self.app.url, timeout=ANSWER_WITHIN)

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(60)

    def close(self) -> None:
        self.http.close()
        self.run(self.app.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    # -- requests as Twilio sends them, or not --------------------------------------------------

    def post_form(self, path: str, form: list[tuple[str, str]], signature: str | None) -> int:
        url = self.app.url + path
        if signature == "valid":
            signature = self.app.validator.compute_signature(url, _Repeated(form))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        body = httpx.QueryParams(form).__str__().encode()
        return self.http.post(path, content=body, headers=headers).status_code

    def post_raw(
        self, path: str, body: bytes, content_type: str | None, signature: str | None
    ) -> int:
        full = f"{path}?bodySHA256={hashlib.sha256(body).hexdigest()}"
        headers = {}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if signature == "valid":
            signature = self.app.sign(self.app.url + full)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        return self.http.post(full, content=body, headers=headers).status_code


class _Repeated(dict[str, str]):
    """Form fields with repeated names, as twilio's validator reads them (``getall``)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        super().__init__(items)
        self.items_ = items

    def getall(self, name: str) -> list[str]:
        return [v for k, v in self.items_ if k == name]


class ServerErrors(logging.Handler):
    """Records every ERROR a server logs (uvicorn's "Exception in ASGI application", tac's)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()[:300]}")


class Caller:
    """A normal call in a thread of its own, asking the agent something every few ms."""

    def __init__(self, app: VoiceApp) -> None:
        self.app = app
        self.turns = 0
        self.failures: list[str] = []
        self.slowest = 0.0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._talk, daemon=True)
        self.thread.start()

    def _talk(self) -> None:
        asyncio.run(self._calls())

    async def _calls(self) -> None:
        while not self._stop.is_set():
            try:
                async with self.app.call() as call:
                    for _ in range(20):
                        if self._stop.is_set():
                            return
                        started = time.monotonic()
                        await call.say(f"turn {self.turns}")
                        text, _ = await call.reply(timeout=ANSWER_WITHIN)
                        assert text == f"you said turn {self.turns}", text
                        self.slowest = max(self.slowest, time.monotonic() - started)
                        self.turns += 1
                        await asyncio.sleep(0.02)
            except Exception as exc:  # recorded: the test fails on it
                self.failures.append(repr(exc))
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(ANSWER_WITHIN * 2)


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    errors = ServerErrors()
    for name in ("uvicorn.error", "uvicorn.asgi", "tac"):
        logging.getLogger(name).addHandler(errors)
    server = Running()
    caller = Caller(server.app)
    try:
        yield server
    finally:
        caller.stop()
        server.close()
        for name in ("uvicorn.error", "uvicorn.asgi", "tac"):
            logging.getLogger(name).removeHandler(errors)
    # checked once every route has been fuzzed: the app answered a normal caller all along
    assert caller.failures == []
    assert caller.turns > 0
    assert server.errors == []
    assert errors.records == []


# -- strategies ----------------------------------------------------------------------------------

text = st.text(max_size=40)
signatures = st.one_of(
    st.just("valid"),
    st.none(),
    st.just("A" * 27 + "="),  # well-formed, wrong
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40),  # header-safe
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
addresses = st.sampled_from([FROM, AGENT_NUMBER, "whatsapp:+14155550123", "", "x@y.z", "+1"])
events = st.fixed_dictionaries(
    {
        "eventType": st.sampled_from(sorted(KNOWN_EVENT_TYPES)) | text,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "id": text,
                "conversationId": text,
                "configurationId": st.just("conv_configuration_x") | text,
                "status": st.sampled_from(["ACTIVE", "INACTIVE", "CLOSED"]) | text,
                "author": st.fixed_dictionaries(
                    {},
                    optional={
                        "channel": st.sampled_from(["SMS", "VOICE", "WHATSAPP", "CHAT"]) | text,
                        "address": addresses,
                        "participantId": text,
                    },
                ),
                "content": st.fixed_dictionaries(
                    {}, optional={"type": st.just("TEXT") | text, "text": text}
                ),
                "channelId": text,
            },
        )
        | json_values,
    }
)


def nested(depth: int) -> bytes:
    return b'{"eventType": "COMMUNICATION_CREATED", "data": ' + b"[" * depth + b"]" * depth + b"}"


json_bodies = st.one_of(
    events.map(lambda e: json.dumps(e).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.integers(900, 3000).map(nested),
)
content_types = st.sampled_from(
    [
        "application/json",
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-8",
    ]
)
form_names = st.sampled_from(
    [
        "CallSid",
        "AccountSid",
        "From",
        "To",
        "CallStatus",
        "Direction",
        "SessionId",
        "SessionStatus",
        "HandoffData",
        "CallDuration",
        "AnsweredBy",
        "RecordingSid",
        "RecordingUrl",
        "RecordingStatus",
        "SipResponseCode",
    ]
)
form_values = st.one_of(
    text, st.just(ACCOUNT), st.just("CA" + "1" * 32), st.just("completed"), st.just("{}")
)
forms = st.lists(st.tuples(form_names | text, form_values), max_size=12)


def form_paths(app: VoiceApp) -> list[str]:
    config = app.tac.config
    return [
        app.server.config.twiml_path,
        config.voice_action_path,
        *(config.call_event_path(kind) for kind in ("status", "amd", "recording")),
    ]


# -- HTTP routes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/webhook", "/ci-webhook"])
def test_json_routes_never_answer_5xx(running: Running, path: str) -> None:
    @FUZZ
    @given(body=json_bodies, content_type=content_types, signature=signatures)
    def check(body: bytes, content_type: str | None, signature: str | None) -> None:
        status = running.post_raw(path, body, content_type, signature)
        # 502 is Memory failing (an upstream), never what the client sent: the fake never fails
        assert status < 500, (status, body[:200])

    check()


def test_form_routes_never_answer_5xx(running: Running) -> None:
    paths = form_paths(running.app)

    @FUZZ
    @given(
        path=st.sampled_from(paths),
        form=forms,
        signature=signatures,
    )
    def check(path: str, form: list[tuple[str, str]], signature: str | None) -> None:
        status = running.post_form(path, form, signature)
        assert status < 500, (status, path, form)

    check()


def test_raw_bodies_on_form_routes_never_answer_5xx(running: Running) -> None:
    paths = form_paths(running.app)

    @FUZZ
    @given(
        path=st.sampled_from(paths),
        body=st.binary(max_size=300),
        content_type=content_types,
        signature=signatures,
    )
    def check(path: str, body: bytes, content_type: str | None, signature: str | None) -> None:
        status = running.post_raw(path, body, content_type, signature)
        assert status < 500, (status, path, body[:100])

    check()


def test_every_route_with_any_method_never_answers_5xx(running: Running) -> None:
    paths = sorted({r.path for r in running.app.server.app.routes if isinstance(r, Route)})
    assert {"/webhook", "/twiml", "/healthz", "/readyz"} <= set(paths)

    @FUZZ
    @given(
        path=st.sampled_from(paths),
        method=st.sampled_from(["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "POST"]),
        query=st.dictionaries(text, text, max_size=3),
        body=st.binary(max_size=100),
        signature=signatures,
    )
    def check(
        path: str, method: str, query: dict[str, str], body: bytes, signature: str | None
    ) -> None:
        headers = {} if signature in (None, "valid") else {"X-Twilio-Signature": signature}
        answer = running.http.request(method, path, params=query, content=body, headers=headers)
        assert answer.status_code < 500, (answer.status_code, method, path)

    check()


# -- the ConversationRelay WebSocket -------------------------------------------------------------


def setup_frame(call_sid: str) -> dict[str, Any]:
    return {
        "type": "setup",
        "sessionId": "VX" + call_sid[2:],
        "accountSid": ACCOUNT,
        "callSid": call_sid,
        "from": FROM,
        "to": AGENT_NUMBER,
        "direction": "inbound",
        "customParameters": {},
    }


relay_frames = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["prompt", "interrupt", "dtmf", "error", "info", "setup"]) | text},
        optional={
            "voicePrompt": text | json_values,
            "last": st.booleans() | json_values,
            "lang": text,
            "digit": text,
            "utteranceUntilInterrupt": text,
            "durationUntilInterruptMs": st.integers() | text,
            "description": text,
            "name": text,
            "value": json_values,
        },
    ).map(json.dumps),
    json_values.map(json.dumps),
    text,
    st.binary(max_size=100),
    st.integers(500, 3000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 400).map(lambda n: json.dumps({"type": "é" * n})),
)
counter = iter(range(10**9))


def test_the_websocket_never_hangs_and_closes_cleanly(running: Running) -> None:
    app = running.app
    url = app.websocket_url()

    @FUZZ
    @given(
        with_setup=st.booleans(),
        frames=st.lists(relay_frames, max_size=6),
        signature=signatures,
    )
    def check(with_setup: bool, frames: list[str | bytes], signature: str | None) -> None:
        call_sid = f"CAf{next(counter):031d}"  # apart from the normal caller's calls
        headers = {}
        if signature == "valid":
            signature = app.sign(url)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        try:
            socket = connect(url, additional_headers=headers, open_timeout=ANSWER_WITHIN)
        except InvalidStatus as refused:  # refused at the handshake: a 403, not a 5xx
            status = refused.response.status_code
        else:
            status = 101
        assert status < 500
        if status != 101:
            return
        with socket:
            try:
                if with_setup:
                    socket.send(json.dumps(setup_frame(call_sid)))
                for frame in frames:
                    socket.send(frame)
                socket.send(json.dumps({"type": "prompt", "voicePrompt": "ping", "last": True}))
                while True:  # answered, or closed with a proper code: never silence
                    reply = json.loads(socket.recv(timeout=ANSWER_WITHIN))
                    if reply.get("type") == "text" and reply.get("last"):
                        break
            except ConnectionClosed as closed:
                received = closed.rcvd
                assert received is not None, "closed without a close frame (1006)"
                assert received.code in CLEAN_CLOSES, received
                assert len(received.reason.encode()) <= 123
            except TimeoutError:
                pytest.fail(f"no answer and no close within {ANSWER_WITHIN}s: {frames!r:.300}")

    check()

    async def fuzzed_calls_ended() -> None:
        await app.until(lambda: not any(s.startswith("CAf") for s in app.channel._relay().calls))

    running.run(fuzzed_calls_ended())  # every fuzzed call ended (its session with it)
