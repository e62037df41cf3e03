"""The sandbox's phone: a simulated caller speaking ConversationRelay to a TAC app.

``Caller`` does what Twilio does when someone calls the app's number: it POSTs the signed
incoming-call webhook to ``{app_url}/twiml``, checks the TwiML, opens the signed WebSocket to the
``<ConversationRelay url>``, sends ``setup``, and then turns the test's ``say``/``press``/
``interrupt``/``hang_up`` into ``prompt``/``dtmf``/``interrupt`` frames and a closed socket.
Streamed ``text`` tokens become :class:`Reply` objects; ``end`` (with ``handoffData``) and a hang-up
call the ``<Connect action>`` URL with Twilio's signed form. Frames that fail validation get
Twilio's ``error`` frame back, and ten in a row close the socket with 1007.

Everything is recorded on a timeline (:attr:`Caller.events`) and a transcript
(:attr:`Caller.transcript`) for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

import certifi
import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tac_sandbox._ids import sid
from tac_sandbox._settings import SandboxIdentity
from tac_sandbox._signing import sign_form, sign_websocket
from tac_sandbox._twiml import RelayTwiml, TwimlError, parse_relay_twiml, verbs
from tac_sandbox.phone.edge import through_edge

logger = logging.getLogger("tac_sandbox.caller")

DEFAULT_FROM = "+15005550100"
DEFAULT_TO = "+15005550006"
API_VERSION = "2010-04-01"
MALFORMED_LIMIT = 10
_DIGITS = frozenset("0123456789*#")
_SEND_DIGITS = re.compile(r"^[0-9w#*]+$")
_SPEECH_INTERRUPTS = ("any", "speech", "true")


class CallerError(RuntimeError):
    """A caller action that Twilio would not perform (the message says why)."""


class CallFailed(CallerError):
    """The call could not be connected: the TwiML request, the TwiML or the WebSocket failed."""


class CallEnded(CallerError):
    """The call ended while waiting for something that can no longer happen."""


@dataclass(frozen=True)
class CallEvent:
    """One entry of a call's timeline: a frame sent or received, an HTTP request, a change."""

    at: float
    kind: str
    type: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 6), "kind": self.kind, "type": self.type, "data": self.data}


@dataclass(frozen=True)
class Line:
    """One line of the transcript: who said (or did) what, and when (seconds since dialling)."""

    at: float
    speaker: str
    text: str
    kind: str

    def __str__(self) -> str:
        label = (
            self.speaker if self.kind in ("prompt", "reply") else f"{self.speaker} ({self.kind})"
        )
        return f"[{self.at:7.3f}] {label}: {self.text}"

    def to_json(self) -> dict[str, Any]:
        return {
            "at": round(self.at, 6),
            "speaker": self.speaker,
            "text": self.text,
            "kind": self.kind,
        }


class Reply(str):
    """One agent reply: the concatenated ``text`` tokens of a talk cycle (a ``str``).

    ``tokens`` are the tokens as sent, ``frames`` the ``text`` frames with their options
    (``lang``, ``interruptible``, ``preemptible``), ``interrupted`` whether the caller barged in
    and ``heard`` what had been spoken by then.
    """

    position: int
    tokens: tuple[str, ...]
    frames: tuple[dict[str, Any], ...]
    interrupted: bool
    heard: str | None
    started_at: float
    ended_at: float
    prompted_at: float | None

    def __new__(
        cls,
        text: str,
        *,
        position: int,
        frames: Sequence[dict[str, Any]],
        heard: str | None,
        started_at: float,
        ended_at: float,
        prompted_at: float | None = None,
    ) -> Reply:
        reply = super().__new__(cls, text)
        reply.position = position
        reply.frames = tuple(frames)
        reply.tokens = tuple(str(f["token"]) for f in frames)
        reply.interrupted = heard is not None
        reply.heard = heard
        reply.started_at = started_at
        reply.ended_at = ended_at
        reply.prompted_at = prompted_at
        return reply

    @property
    def text(self) -> str:
        return str(self)

    @property
    def first_token_delay(self) -> float | None:
        """Seconds from the caller's last prompt (or DTMF) before this reply to its first token."""
        return None if self.prompted_at is None else self.started_at - self.prompted_at

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "text": self.text,
            "tokens": list(self.tokens),
            "frames": list(self.frames),
            "interrupted": self.interrupted,
            "heard": self.heard,
            "startedAt": round(self.started_at, 6),
            "endedAt": round(self.ended_at, 6),
            "promptedAt": None if self.prompted_at is None else round(self.prompted_at, 6),
        }


class OrchestratorLink(Protocol):
    """What Twilio does in the Conversation Orchestrator for a call with
    ``conversationConfiguration``: create the call's conversation, record what is said."""

    async def create_voice_conversation(
        self, configuration_id: str, call_sid: str, customer: str, agent: str
    ) -> dict[str, Any]: ...

    async def add_voice_communication(
        self,
        conversation_id: str,
        call_sid: str,
        *,
        author: str,
        recipient: str,
        text: str,
        inbound: bool,
    ) -> dict[str, Any]: ...

    async def end_voice_conversation(self, conversation_id: str) -> None: ...


class HttpOrchestratorLink:
    """An :class:`OrchestratorLink` through a running sandbox's control API."""

    def __init__(self, sandbox_url: str, auth: tuple[str, str], http: httpx.AsyncClient) -> None:
        self.url = sandbox_url.rstrip("/")
        self.auth = auth
        self.http = http

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(f"{self.url}{path}", json=body, auth=self.auth)
        if response.status_code >= 400:
            raise CallerError(
                f"the sandbox at {self.url} answered {response.status_code} to {path}:"
                f" {response.text[:500]}"
            )
        result: dict[str, Any] = response.json()
        return result

    async def create_voice_conversation(
        self, configuration_id: str, call_sid: str, customer: str, agent: str
    ) -> dict[str, Any]:
        body = {
            "configurationId": configuration_id,
            "callSid": call_sid,
            "customer": customer,
            "agent": agent,
        }
        return await self._post("/sandbox/voice/conversations", body)

    async def add_voice_communication(
        self,
        conversation_id: str,
        call_sid: str,
        *,
        author: str,
        recipient: str,
        text: str,
        inbound: bool,
    ) -> dict[str, Any]:
        body = {
            "callSid": call_sid,
            "author": author,
            "recipient": recipient,
            "text": text,
            "inbound": inbound,
        }
        return await self._post(
            f"/sandbox/voice/conversations/{conversation_id}/communications", body
        )

    async def end_voice_conversation(self, conversation_id: str) -> None:
        path = f"/conversations/v2/Conversations/{conversation_id}"
        response = await self.http.patch(
            f"{self.url}{path}", json={"status": "CLOSED"}, auth=self.auth
        )
        if response.status_code >= 400:
            raise CallerError(
                f"the sandbox at {self.url} answered {response.status_code} to {path}:"
                f" {response.text[:500]}"
            )


@dataclass
class _ReplyInProgress:
    frames: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = 0.0
    heard: str | None = None

    def text(self) -> str:
        return "".join(str(f["token"]) for f in self.frames)


class Caller:
    """A simulated phone call to a TAC app over ConversationRelay.

    ::

        caller = Caller(app_url, account_sid=sid, auth_token=token)
        await caller.dial()
        await caller.say("Where is my order?")
        reply = await caller.next_reply()
        await caller.hang_up()

    ``direction="outbound-api"`` makes it the callee of an outbound call (the sandbox answers
    Calls API calls this way). ``sandbox_url`` (or ``orchestrator``) lets it create the call's
    Orchestrator conversation when the TwiML asks for ``conversationConfiguration``.
    """

    def __init__(
        self,
        app_url: str,
        *,
        account_sid: str,
        auth_token: str,
        from_: str = DEFAULT_FROM,
        to: str = DEFAULT_TO,
        sandbox_url: str | None = None,
        sandbox_auth: tuple[str, str] | None = None,
        orchestrator: OrchestratorLink | None = None,
        twiml_path: str = "/twiml",
        direction: str = "inbound",
        call_sid: str | None = None,
        caller_name: str = "",
        forwarded_from: str = "",
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
    ) -> None:
        if direction not in ("inbound", "outbound-api", "outbound-dial"):
            raise ValueError(
                f"direction must be inbound, outbound-api or outbound-dial, got {direction!r}"
            )
        parts = urlsplit(app_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"app_url must be an http(s) URL like http://127.0.0.1:8000, got {app_url!r}"
            )
        if not account_sid.startswith("AC"):
            raise ValueError(f"account_sid must start with AC, got {account_sid!r}")
        if not auth_token:
            raise ValueError("auth_token must not be empty (it signs every request)")
        self.app_url = app_url.rstrip("/")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_ = from_
        self.to = to
        self.direction = direction
        self.call_sid = call_sid or sid("CA")
        self.session_id = sid("VX")
        self.caller_name = caller_name
        self.forwarded_from = forwarded_from
        self.twiml_path = twiml_path if twiml_path.startswith("/") else f"/{twiml_path}"
        self.sandbox_url = sandbox_url.rstrip("/") if sandbox_url else None
        self.timeout = timeout
        self._sandbox_auth = sandbox_auth or (account_sid, auth_token)
        self._own_http = http_client is None
        self._http = http_client
        self._orchestrator = orchestrator
        self.twiml: RelayTwiml | None = None
        self.setup: dict[str, Any] | None = None
        self.conversation: dict[str, Any] | None = None
        self.status = "new"
        self.end_reason: str | None = None
        self.handoff_data: str | None = None
        self.close_code: int | None = None
        self.tts_language: str | None = None
        self.transcription_language: str | None = None
        self.events: list[CallEvent] = []
        self.transcript: list[Line] = []
        self.replies: list[Reply] = []
        self.action_callbacks: list[dict[str, Any]] = []
        self.on_ended: list[Callable[[Caller], Any]] = []
        self._ws: ClientConnection | None = None
        self._receiver: asyncio.Task[None] | None = None
        self._current: _ReplyInProgress | None = None
        self._cursor = 0
        self._malformed = 0
        self._prompted_at: float | None = None
        self._started: float | None = None
        self.connected_at: float | None = None
        self._hanging_up = False
        self._finished = False
        self._changed = asyncio.Event()
        self._done = asyncio.Event()

    @classmethod
    def from_identity(
        cls,
        identity: SandboxIdentity,
        app_url: str,
        *,
        sandbox_url: str | None = None,
        **options: Any,
    ) -> Caller:
        """A caller with a sandbox identity's account, auth token and number (``to``)."""
        options.setdefault("to", identity.phone_number)
        return cls(
            app_url,
            account_sid=identity.account_sid,
            auth_token=identity.auth_token,
            sandbox_url=sandbox_url,
            **options,
        )

    # ------------------------------------------------------------------ public state

    @property
    def connected(self) -> bool:
        """Whether the ConversationRelay session is open."""
        return self.status == "in-progress"

    @property
    def ended(self) -> bool:
        """Whether the call is over (its action callback, if any, already answered)."""
        return self._done.is_set()

    @property
    def partial_reply(self) -> str:
        """The tokens of the reply being streamed right now (``""`` when none)."""
        return self._current.text() if self._current else ""

    def transcript_text(self) -> str:
        """The transcript, one line per utterance or action."""
        return "\n".join(str(line) for line in self.transcript) or "(nothing said)"

    def summary(self) -> dict[str, Any]:
        """The call as JSON (what the control API shows)."""
        return {
            "id": self.call_sid,
            "callSid": self.call_sid,
            "sessionId": self.session_id,
            "direction": self.direction,
            "from": self.from_,
            "to": self.to,
            "status": self.status,
            "endReason": self.end_reason,
            "handoffData": self.handoff_data,
            "closeCode": self.close_code,
            "conversationId": self.conversation["id"] if self.conversation else None,
            "twiml": self.twiml.to_json() if self.twiml else None,
            "setup": self.setup,
            "replies": len(self.replies),
            "partialReply": self.partial_reply,
            "actionCallbacks": self.action_callbacks,
        }

    # ------------------------------------------------------------------ dialling

    async def __aenter__(self) -> Caller:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def dial(
        self,
        *,
        params: Mapping[str, str] | None = None,
        custom_parameters: Mapping[str, str] | None = None,
        twiml: str | None = None,
        twiml_url: str | None = None,
    ) -> Caller:
        """Place the call and open the ConversationRelay session; returns ``self``.

        ``params`` are extra form fields of the TwiML request; ``custom_parameters`` are added to
        ``setup.customParameters`` on top of the TwiML's ``<Parameter>`` nouns; ``twiml`` skips
        the request (the TwiML of a Calls API call); ``twiml_url`` replaces ``{app_url}/twiml``.
        Raises :class:`CallFailed` when Twilio would fail the call.
        """
        if self.status != "new":
            raise CallerError(f"call {self.call_sid} was already dialled (status {self.status})")
        loop = asyncio.get_running_loop()
        self._started = loop.time()
        self.status = "ringing"
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout, verify=tls_context())
        if self._orchestrator is None and self.sandbox_url is not None:
            self._orchestrator = HttpOrchestratorLink(
                self.sandbox_url, self._sandbox_auth, self._http
            )
        try:
            base = twiml_url or f"{self.app_url}{self.twiml_path}"
            if twiml is None:
                twiml = await self._fetch_twiml(base, params or {})
            try:
                self.twiml = parse_relay_twiml(twiml, base)
            except TwimlError as exc:
                raise CallFailed(f"the app's TwiML cannot start ConversationRelay: {exc}") from exc
            for warning in self.twiml.warnings:
                self._event("status", "twiml-warning", {"warning": warning})
            for text in self.twiml.said_before:
                self._line("agent", text, "say")
            if self.twiml.conversation_configuration:
                await self._create_conversation(self.twiml.conversation_configuration)
            await self._connect(self.twiml, dict(custom_parameters or {}))
        except BaseException:
            self.status = "failed"
            self.end_reason = self.end_reason or "failed"
            await self._close_conversation_quietly()
            await self._finish_quietly()
            raise
        return self

    async def _close_conversation_quietly(self) -> None:
        """A failed call leaves no ACTIVE conversation behind (Twilio closes it)."""
        if self.conversation is None or self._orchestrator is None:
            return
        try:
            await self._orchestrator.end_voice_conversation(self.conversation["id"])
        except Exception as exc:  # the call already failed; say why the cleanup did too
            self._event("status", "conversation-close-failed", {"error": repr(exc)})

    async def _fetch_twiml(self, url: str, extra: Mapping[str, str]) -> str:
        assert self._http is not None
        status = "ringing" if self.direction == "inbound" else "in-progress"
        fields = {**self._call_fields(status), **self._geo_fields(), **dict(extra)}
        target, edge_headers = through_edge(url, self.app_url)
        headers = {"X-Twilio-Signature": sign_form(url, fields, self.auth_token), **edge_headers}
        self._event("http", "twiml-request", {"url": url, "fields": fields})
        try:
            response = await self._http.post(target, data=fields, headers=headers)
        except httpx.HTTPError as exc:
            raise CallFailed(f"the TwiML request to {url} failed: {exc!r}") from exc
        self._event(
            "http",
            "twiml-response",
            {"status": response.status_code, "body": response.text[:4000]},
        )
        if response.status_code >= 400:
            raise CallFailed(
                f"the app answered the TwiML request to {url} with {response.status_code}:"
                f" {response.text[:500]}"
            )
        return response.text

    def _call_fields(self, status: str) -> dict[str, str]:
        fields = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.call_sid,
            "CallStatus": status,
            "Called": self.to,
            "Caller": self.from_,
            "Direction": self.direction,
            "From": self.from_,
            "To": self.to,
        }
        if self.caller_name:
            fields["CallerName"] = self.caller_name
        if self.forwarded_from:
            fields["ForwardedFrom"] = self.forwarded_from
        return fields

    def _geo_fields(self) -> dict[str, str]:
        us_caller = self.from_.startswith("+1")
        us_called = self.to.startswith("+1")
        caller = {
            "City": "SAN FRANCISCO" if us_caller else "",
            "Country": "US" if us_caller else "",
            "State": "CA" if us_caller else "",
            "Zip": "94107" if us_caller else "",
        }
        called = {"City": "", "Country": "US" if us_called else "", "State": "", "Zip": ""}
        fields: dict[str, str] = {}
        for suffix, value in caller.items():
            fields[f"From{suffix}"] = value
            fields[f"Caller{suffix}"] = value
        for suffix, value in called.items():
            fields[f"To{suffix}"] = value
            fields[f"Called{suffix}"] = value
        return fields

    @property
    def _customer(self) -> str:
        return self.from_ if self.direction == "inbound" else self.to

    @property
    def _agent(self) -> str:
        return self.to if self.direction == "inbound" else self.from_

    async def _create_conversation(self, configuration_id: str) -> None:
        if self._orchestrator is None:
            raise CallFailed(
                f"the TwiML sets conversationConfiguration={configuration_id!r}, so Twilio would"
                " create the call's Orchestrator conversation, but this Caller has no sandbox:"
                " pass sandbox_url= (or build it with Sandbox.caller())"
            )
        try:
            self.conversation = await self._orchestrator.create_voice_conversation(
                configuration_id, self.call_sid, self._customer, self._agent
            )
        except Exception as exc:
            raise CallFailed(
                f"creating the Orchestrator conversation for {self.call_sid} failed: {exc}"
            ) from exc
        self._event("status", "conversation-created", {"conversation": self.conversation})

    async def _connect(self, twiml: RelayTwiml, extra_parameters: dict[str, str]) -> None:
        target, edge_headers = through_edge(twiml.url, self.app_url)
        headers = {"X-Twilio-Signature": sign_websocket(twiml.url, self.auth_token), **edge_headers}
        self._event("http", "websocket-connect", {"url": twiml.url})
        try:
            self._ws = await connect(
                target,
                additional_headers=headers,
                open_timeout=self.timeout,
                compression=None,
                max_size=2**20,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            self._event("status", "websocket-refused", {"status": status})
            await self._report_failure(f"WebSocket handshake refused with HTTP {status}")
            raise CallFailed(
                f"the app refused the WebSocket to {twiml.url} with HTTP {status}"
            ) from exc
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            self._event("status", "websocket-failed", {"error": repr(exc)})
            await self._report_failure("Unable to connect to the WebSocket")
            raise CallFailed(f"the WebSocket to {twiml.url} could not be opened: {exc!r}") from exc
        self.status = "in-progress"
        self.connected_at = asyncio.get_running_loop().time()
        self.tts_language = twiml.attributes.get("ttsLanguage") or twiml.attributes.get("language")
        self.transcription_language = twiml.language
        parameters = {**twiml.parameters, **extra_parameters}
        self.setup = {
            "type": "setup",
            "sessionId": self.session_id,
            "accountSid": self.account_sid,
            "parentCallSid": "",
            "callSid": self.call_sid,
            "from": self.from_,
            "to": self.to,
            "forwardedFrom": self.forwarded_from,
            "callType": "PSTN",
            "callerName": self.caller_name,
            "direction": "inbound" if self.direction == "inbound" else "outbound",
            "callStatus": "RINGING" if self.direction == "inbound" else "IN-PROGRESS",
            "customParameters": parameters,
        }
        try:
            await self._send(self.setup)
        except CallEnded as exc:
            self.close_code = self._ws.close_code
            await self._report_failure("WebSocket Ended")
            raise CallFailed(
                f"the app closed the WebSocket to {twiml.url} at once (code {self.close_code})"
            ) from exc
        if twiml.welcome_greeting:
            self._line("agent", twiml.welcome_greeting, "greeting")
        self._receiver = asyncio.get_running_loop().create_task(self._receive())

    async def _report_failure(self, message: str) -> None:
        self.end_reason = "failed"
        await self._callback(session_status="failed", error=("64105", message))

    # ------------------------------------------------------------------ the caller's actions

    async def say(
        self,
        text: str,
        *,
        partials: bool | Sequence[str] = False,
        lang: str | None = None,
    ) -> None:
        """The caller says ``text``: one ``prompt`` frame with ``last: true``.

        ``partials`` (with ``partialPrompts="true"`` in the TwiML) first sends unfinalised
        prompts (``last: false``): the given strings, or with ``True`` the growing word prefixes
        of ``text``.
        """
        ws = self._require_open("say")
        if not text:
            raise ValueError("text must not be empty (the caller says something)")
        language = lang or self.transcription_language or "en-US"
        if partials:
            twiml = self.twiml
            if twiml is None or not twiml.flag("partialPrompts"):
                raise CallerError(
                    'Twilio sends partial prompts only with partialPrompts="true" in the TwiML'
                )
            if partials is True:
                words = text.split()
                pieces: Sequence[str] = [" ".join(words[:n]) for n in range(1, len(words))]
            else:
                pieces = list(partials)
            for piece in pieces:
                await self._send(
                    {"type": "prompt", "voicePrompt": piece, "lang": language, "last": False}, ws
                )
        self._line("caller", text, "prompt")
        await self._record_communication(text, inbound=True)
        self._prompted_at = self._elapsed()
        await self._send(
            {"type": "prompt", "voicePrompt": text, "lang": language, "last": True}, ws
        )

    async def ask(self, text: str, timeout: float | None = None) -> Reply:
        """Say ``text`` and return the agent's next complete reply."""
        await self.say(text)
        return await self.next_reply(timeout)

    async def interrupt(
        self, utterance_until_interrupt: str | None = None, duration_ms: int | None = None
    ) -> dict[str, Any]:
        """The caller barges in; returns the ``interrupt`` frame sent.

        ``utterance_until_interrupt`` defaults to the tokens heard so far of the reply in
        progress, ``duration_ms`` to the milliseconds since its first token.
        """
        ws = self._require_open("interrupt")
        current = self._current
        allowed = self._interruptible(current)
        if allowed not in _SPEECH_INTERRUPTS:
            raise CallerError(
                f"speech does not interrupt the agent here (interruptible={allowed!r})"
            )
        heard = utterance_until_interrupt
        if heard is None:
            heard = current.text() if current else ""
        if duration_ms is None:
            now = asyncio.get_running_loop().time()
            duration_ms = int((now - current.started_at) * 1000) if current else 0
        if current is not None:
            current.heard = heard
        frame = {
            "type": "interrupt",
            "utteranceUntilInterrupt": heard,
            "durationUntilInterruptMs": int(duration_ms),
        }
        self._line("caller", heard, "interrupt")
        await self._send(frame, ws)
        return frame

    def _interruptible(self, current: _ReplyInProgress | None) -> str:
        if current is not None:
            for frame in reversed(current.frames):
                if isinstance(frame.get("interruptible"), bool):
                    return "any" if frame["interruptible"] else "none"
        if self.twiml is None:
            return "any"
        return self.twiml.attributes.get("interruptible", "any").lower()

    async def press(self, digits: str) -> None:
        """The caller presses keys: one ``dtmf`` frame per digit (needs ``dtmfDetection``)."""
        ws = self._require_open("press")
        if not digits or any(d not in _DIGITS for d in digits):
            raise ValueError(f"digits must be made of 0-9, * and #, got {digits!r}")
        if self.twiml is None or not self.twiml.flag("dtmfDetection"):
            raise CallerError('Twilio sends dtmf only with dtmfDetection="true" in the TwiML')
        for digit in digits:
            self._line("caller", digit, "dtmf")
            self._prompted_at = self._elapsed()
            await self._send({"type": "dtmf", "digit": digit}, ws)

    async def hang_up(self) -> None:
        """The caller hangs up: the socket closes (1000), then the ``<Connect action>`` callback
        (``CallStatus=completed``, ``SessionStatus=ended``). Nothing happens if already ended."""
        if self._finished or self._ws is None:
            return
        self._hanging_up = True
        self._line("caller", "(hangs up)", "hangup")
        self.end_reason = "hangup"
        with contextlib.suppress(Exception):
            await self._ws.close(1000, "caller hung up")
        await self._stop_receiver()
        await self._finish(session_status="ended", call_status="completed")

    async def end_by_api(self) -> None:
        """The app ended the call through the Calls API: the socket closes and, the call being
        over, no ``<Connect action>`` is requested."""
        if self._finished or self._ws is None:
            return
        self._hanging_up = True
        self.end_reason = "api-ended"
        self._line("agent", "(ends the call through the Calls API)", "hangup")
        with contextlib.suppress(Exception):
            await self._ws.close(1000, "call completed")
        await self._stop_receiver()
        await self._finish(session_status="ended", call_status="completed", callback=False)

    async def aclose(self) -> None:
        """Hang up if the call is still on, and release the HTTP client."""
        if self.connected:
            await self.hang_up()
        await self._stop_receiver()
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def _require_open(self, action: str) -> ClientConnection:
        if self._ws is None or self.status != "in-progress":
            raise CallEnded(
                f"cannot {action}: call {self.call_sid} is {self.status}"
                + (f" ({self.end_reason})" if self.end_reason else "")
            )
        return self._ws

    # ------------------------------------------------------------------ waiting

    async def next_reply(self, timeout: float | None = None) -> Reply:
        """The agent's next complete reply (after ``text`` with ``last: true``).

        Raises ``TimeoutError`` (with the transcript) if none comes within ``timeout`` seconds
        (default: the caller's ``timeout``), :class:`CallEnded` if the call ends first.
        """
        limit = self.timeout if timeout is None else timeout
        ready = await self.wait_for(
            lambda: self._cursor < len(self.replies) or self._finished, limit
        )
        if self._cursor < len(self.replies):
            reply = self.replies[self._cursor]
            self._cursor += 1
            return reply
        if not ready:
            raise TimeoutError(
                f"no reply within {limit}s on call {self.call_sid}; transcript:\n"
                + self.transcript_text()
            )
        raise CallEnded(
            f"call {self.call_sid} ended ({self.end_reason}) before another reply; transcript:\n"
            + self.transcript_text()
        )

    async def wait_ended(self, timeout: float | None = None) -> Caller:
        """Wait until the call is over (the action callback, if any, was posted)."""
        limit = self.timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(self._done.wait(), limit)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"call {self.call_sid} still {self.status} after {limit}s; transcript:\n"
                + self.transcript_text()
            ) from None
        return self

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds (re-checked on every change); ``False`` on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                return predicate()
        return True

    async def expect_reply(
        self,
        contains: str | None = None,
        *,
        equals: str | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """The next reply, checked: ``AssertionError`` with the transcript (the reply marked)
        unless it ``contains`` / ``equals`` the given text."""
        __tracebackhide__ = True
        reply = await self.next_reply(timeout)
        if equals is not None and reply != equals:
            raise AssertionError(
                f"expected the agent to say {equals!r}, it said {reply.text!r}\n"
                + self._marked(reply)
            )
        if contains is not None and contains not in reply:
            raise AssertionError(
                f"expected a reply containing {contains!r}, the agent said {reply.text!r}\n"
                + self._marked(reply)
            )
        return reply

    async def expect_ended(
        self, reason: str | None = None, *, timeout: float | None = None
    ) -> Caller:
        """Wait for the end of the call; ``AssertionError`` unless its ``end_reason`` is
        ``reason`` (``hangup``, ``handoff``, ``app-ended``, ``app-closed``, ``malformed``...)."""
        __tracebackhide__ = True
        await self.wait_ended(timeout)
        if reason is not None and self.end_reason != reason:
            raise AssertionError(
                f"expected the call to end with {reason!r}, it ended with {self.end_reason!r}\n"
                + self.transcript_text()
            )
        return self

    def _marked(self, reply: Reply) -> str:
        lines = []
        for line in self.transcript:
            mine = line.kind == "reply" and line.text == reply.text
            lines.append(f"{'>>' if mine else '  '} {line}")
        return "\n".join(lines)

    def assert_heard(self, text: str) -> Reply:
        """The first reply containing ``text``; ``AssertionError`` with the transcript if none."""
        __tracebackhide__ = True
        for reply in self.replies:
            if text in reply:
                return reply
        raise AssertionError(
            f"the agent never said {text!r}; transcript:\n{self.transcript_text()}"
        )

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    # ------------------------------------------------------------------ the app's frames

    async def _receive(self) -> None:
        ws = self._ws
        assert ws is not None
        try:
            async for raw in ws:
                await self._on_frame(raw)
                if self._finished:
                    return
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("call %s: handling a frame failed", self.call_sid)
            with contextlib.suppress(Exception):
                await ws.close(1011, "the sandbox's phone failed")
        self.close_code = ws.close_code
        if not self._hanging_up and not self._finished:
            self._event(
                "status", "websocket-closed", {"code": ws.close_code, "reason": ws.close_reason}
            )
            self.end_reason = "app-closed"
            self._line("agent", f"(socket closed, code {ws.close_code})", "closed")
            await self._finish(session_status="failed", error=("64105", "WebSocket Ended"))

    async def _on_frame(self, raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            await self._malformed_frame(raw.decode("utf-8", "replace"), "binary frame")
            return
        try:
            message = json.loads(raw)
        except json.JSONDecodeError:
            await self._malformed_frame(raw, "not JSON")
            return
        problem = validate_app_message(message)
        if problem is not None:
            await self._malformed_frame(raw, problem)
            return
        self._malformed = 0
        self._event("received", message["type"], message)
        handler = getattr(self, f"_on_{message['type']}")
        await handler(message)
        self._notify()

    async def _malformed_frame(self, raw: str, problem: str) -> None:
        self._malformed += 1
        self._event("received", "invalid", {"raw": raw[:2000], "problem": problem})
        ws = self._ws
        if ws is None:
            return
        description = f"Invalid message received: {raw[:1000]}"
        with contextlib.suppress(ConnectionClosed):
            await self._send({"type": "error", "description": description}, ws)
        if self._malformed >= MALFORMED_LIMIT:
            self.end_reason = "malformed"
            self._line("agent", "(too many malformed messages; socket closed 1007)", "closed")
            with contextlib.suppress(Exception):
                await ws.close(1007, "Too many consecutive malformed messages")
            self.close_code = 1007
            await self._finish(session_status="failed", error=("64105", "WebSocket Ended"))
        self._notify()

    async def _on_text(self, message: dict[str, Any]) -> None:
        now = asyncio.get_running_loop().time()
        current = self._current
        if current is None:
            current = self._current = _ReplyInProgress(started_at=now)
        current.frames.append(message)
        if not message.get("last", False):
            return
        self._current = None
        text = current.text()
        if not text and current.heard is None and len(current.frames) == 1:
            self._event("status", "empty-reply", {})
            return
        reply = Reply(
            text,
            position=len(self.replies),
            frames=current.frames,
            heard=current.heard,
            started_at=current.started_at - (self._started or 0.0),
            ended_at=now - (self._started or 0.0),
            prompted_at=self._prompted_at,
        )
        self.replies.append(reply)
        self.transcript.append(Line(reply.ended_at, "agent", text, "reply"))
        if text:
            await self._record_communication(text, inbound=False)

    async def _on_play(self, message: dict[str, Any]) -> None:
        self._line("agent", str(message["source"]), "play")

    async def _on_sendDigits(self, message: dict[str, Any]) -> None:
        self._line("agent", str(message["digits"]), "digits")

    async def _on_language(self, message: dict[str, Any]) -> None:
        if message.get("ttsLanguage"):
            self.tts_language = message["ttsLanguage"]
        if message.get("transcriptionLanguage"):
            self.transcription_language = message["transcriptionLanguage"]
        described = ", ".join(f"{k}={v}" for k, v in message.items() if k != "type")
        self._line("agent", described, "language")

    async def _on_end(self, message: dict[str, Any]) -> None:
        self.handoff_data = message.get("handoffData")
        self.end_reason = "handoff" if self.handoff_data is not None else "app-ended"
        self._line("agent", self.handoff_data or "(ends the session)", "end")
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close(1000, "session ended")
            self.close_code = ws.close_code
        await self._finish(session_status="ended", call_status="in-progress")

    # ------------------------------------------------------------------ ending

    async def _finish(
        self,
        *,
        session_status: str,
        call_status: str = "in-progress",
        error: tuple[str, str] | None = None,
        callback: bool = True,
    ) -> None:
        if self._finished:
            return
        self._finished = True
        self.status = "completed" if session_status == "ended" else "failed"
        try:
            if callback:
                await self._callback(
                    session_status=session_status, call_status=call_status, error=error
                )
        finally:
            await self._run_on_ended()
            self._done.set()
            self._notify()

    async def _finish_quietly(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close(1000)
        if not self._finished:
            self._finished = True
            await self._run_on_ended()
            self._done.set()
            self._notify()

    async def _run_on_ended(self) -> None:
        for hook in list(self.on_ended):
            try:
                result = hook(self)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                logger.exception("call %s: an on_ended hook failed", self.call_sid)

    async def _stop_receiver(self) -> None:
        task = self._receiver
        if task is None or task is asyncio.current_task():
            return
        if not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), 2.0)
            except asyncio.TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _callback(
        self,
        *,
        session_status: str,
        call_status: str = "in-progress",
        error: tuple[str, str] | None = None,
    ) -> None:
        """POST (or GET) the ``<Connect action>`` URL with Twilio's signed form."""
        twiml = self.twiml
        if twiml is None or twiml.action is None or self._http is None:
            return
        loop = asyncio.get_running_loop()
        began = self.connected_at or self._started or loop.time()
        fields = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.call_sid,
            "CallStatus": call_status,
            "Direction": self.direction,
            "From": self.from_,
            "To": self.to,
            "SessionId": self.session_id,
            "SessionStatus": session_status,
            "SessionDuration": str(max(0, int(loop.time() - began))),
        }
        if self.handoff_data is not None:
            fields["HandoffData"] = self.handoff_data
        if error is not None:
            fields["ErrorCode"], fields["ErrorMessage"] = error
        url, basic = self._target(twiml.action)
        auth = basic if basic is not None else httpx.USE_CLIENT_DEFAULT
        record: dict[str, Any] = {"url": url, "method": twiml.action_method, "fields": fields}
        try:
            if twiml.action_method == "GET":
                parts = urlsplit(url)
                query = "&".join(q for q in (parts.query, urlencode(fields)) if q)
                full = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
                target, edge_headers = through_edge(full, self.app_url)
                headers = {"X-Twilio-Signature": sign_form(full, {}, self.auth_token)}
                response = await self._http.get(
                    target, headers={**headers, **edge_headers}, auth=auth
                )
            else:
                target, edge_headers = through_edge(url, self.app_url)
                headers = {"X-Twilio-Signature": sign_form(url, fields, self.auth_token)}
                response = await self._http.post(
                    target, data=fields, headers={**headers, **edge_headers}, auth=auth
                )
        except httpx.HTTPError as exc:
            record["error"] = repr(exc)
            self.action_callbacks.append(record)
            self._event("http", "action-callback", record)
            return
        record["status"] = response.status_code
        record["response"] = response.text[:4000]
        self.action_callbacks.append(record)
        self._event("http", "action-callback", record)
        for verb in verbs(response.text):
            if verb["verb"] == "Say" and verb["text"]:
                self._line("agent", verb["text"], "say")
            elif verb["verb"] != "Say":
                self._event("status", "action-twiml", verb)

    def _target(self, url: str) -> tuple[str, httpx.BasicAuth | None]:
        """Where a callback really goes: ``*.twilio.com`` URLs go to the sandbox, with the
        account's credentials (the sandbox's products require them)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        sandbox = self.sandbox_url
        if host.endswith(".twilio.com") and sandbox:
            product = host.split(".", 1)[0]
            base = urlsplit(sandbox)
            url = urlunsplit(
                (base.scheme, base.netloc, f"{base.path}/{product}{parts.path}", parts.query, "")
            )
            return url, httpx.BasicAuth(*self._sandbox_auth)
        if sandbox and url.startswith(sandbox + "/"):
            return url, httpx.BasicAuth(*self._sandbox_auth)
        return url, None

    # ------------------------------------------------------------------ recording

    async def _send(self, frame: dict[str, Any], ws: ClientConnection | None = None) -> None:
        target = ws or self._ws
        if target is None:
            raise CallEnded(f"call {self.call_sid} has no open WebSocket")
        self._event("sent", str(frame["type"]), frame)
        try:
            await target.send(json.dumps(frame))
        except ConnectionClosed as exc:
            raise CallEnded(f"call {self.call_sid}: the app closed the WebSocket ({exc})") from exc

    async def _record_communication(self, text: str, *, inbound: bool) -> None:
        if self.conversation is None or self._orchestrator is None:
            return
        author, recipient = (
            (self._customer, self._agent) if inbound else (self._agent, self._customer)
        )
        try:
            await self._orchestrator.add_voice_communication(
                self.conversation["id"],
                self.call_sid,
                author=author,
                recipient=recipient,
                text=text,
                inbound=inbound,
            )
        except Exception as exc:
            self._event("status", "communication-failed", {"error": str(exc), "text": text})

    def _elapsed(self) -> float:
        if self._started is None:
            return 0.0
        return asyncio.get_running_loop().time() - self._started

    def record_event(self, kind: str, type_: str, data: dict[str, Any]) -> None:
        """Add an entry to the timeline (the sandbox records the call's HTTP callbacks here)."""
        self._event(kind, type_, data)

    def _event(self, kind: str, type_: str, data: dict[str, Any]) -> None:
        self.events.append(CallEvent(self._elapsed(), kind, type_, data))

    def _line(self, speaker: str, text: str, kind: str) -> None:
        self.transcript.append(Line(self._elapsed(), speaker, text, kind))
        self._notify()

    def __repr__(self) -> str:
        return (
            f"Caller(call_sid={self.call_sid!r}, from_={self.from_!r}, to={self.to!r},"
            f" status={self.status!r})"
        )


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One verified TLS context for every caller's HTTP client (loading CAs takes ~50 ms)."""
    return ssl.create_default_context(cafile=certifi.where())


def validate_app_message(message: Any) -> str | None:
    """Why ConversationRelay would reject an app message (``None`` when it is valid)."""
    if not isinstance(message, dict):
        return "not a JSON object"
    kind = message.get("type")
    if kind == "text":
        if not isinstance(message.get("token"), str):
            return "text.token is required and must be a string"
        return _optional(message, ("last", "interruptible", "preemptible"), bool) or _optional(
            message, ("lang",), str
        )
    if kind == "play":
        source = message.get("source")
        if not isinstance(source, str) or not source:
            return "play.source is required and must be a URL"
        loop = message.get("loop")
        if loop is not None and (not isinstance(loop, int) or isinstance(loop, bool) or loop < 0):
            return "play.loop must be a non-negative integer"
        return _optional(message, ("preemptible", "interruptible"), bool)
    if kind == "sendDigits":
        digits = message.get("digits")
        if not isinstance(digits, str) or not _SEND_DIGITS.match(digits):
            return "sendDigits.digits must be a non-empty string of 0-9, w, # and *"
        return None
    if kind == "language":
        given = [message.get(k) for k in ("ttsLanguage", "transcriptionLanguage")]
        if all(v is None for v in given):
            return "language needs ttsLanguage or transcriptionLanguage"
        return _optional(message, ("ttsLanguage", "transcriptionLanguage"), str)
    if kind == "end":
        return _optional(message, ("handoffData",), str)
    if kind is None:
        return "the message has no type"
    return f"unknown message type {kind!r}"


def _optional(message: dict[str, Any], names: Sequence[str], kind: type) -> str | None:
    for name in names:
        value = message.get(name)
        if value is not None and not isinstance(value, kind):
            return f"{message['type']}.{name} must be a {kind.__name__}"
    return None
