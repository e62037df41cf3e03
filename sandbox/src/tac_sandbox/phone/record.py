"""One call as the test sees it: its state, timeline, transcript and replies, and the
waits and assertions over them (the base of :class:`~tac_sandbox.phone.caller.Caller`)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from typing_extensions import Self
from websockets.asyncio.client import ClientConnection

from tac_sandbox._closing import AsyncClosing
from tac_sandbox._ids import sid
from tac_sandbox._twiml import RelayTwiml

if TYPE_CHECKING:
    from tac_sandbox.phone.links import OrchestratorLink

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


@dataclass
class _ReplyInProgress:
    frames: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = 0.0
    heard: str | None = None

    def text(self) -> str:
        return "".join(str(f["token"]) for f in self.frames)


def check_call(app_url: str, account_sid: str, auth_token: str) -> None:
    """Refuse what no call can be made with: an app URL that is not http(s), an account SID
    that is not one, an empty auth token.

    Raises:
        ValueError: naming the argument.
    """
    parts = urlsplit(app_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"app_url must be an http(s) URL like http://127.0.0.1:8000, got {app_url!r}"
        )
    if not account_sid.startswith("AC"):
        raise ValueError(f"account_sid must start with AC, got {account_sid!r}")
    if not auth_token:
        raise ValueError("auth_token must not be empty (it signs every request)")


class SimulatedCall(AsyncClosing):
    """What every simulated call shares: its ``status``, the fields of its webhooks, and
    ``async with`` hanging it up."""

    account_sid: str
    call_sid: str
    from_: str
    to: str
    direction: str
    status: str
    _done: asyncio.Event

    @property
    def connected(self) -> bool:
        """Whether the call's session (ConversationRelay or the media stream) is open."""
        return self.status == "in-progress"

    @property
    def ended(self) -> bool:
        """Whether the call is over (its action callback, if any, already answered)."""
        return self._done.is_set()

    def _call_fields(self, status: str) -> dict[str, str]:
        """The fields of every voice webhook Twilio sends about the call."""
        return {
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


class CallRecord(SimulatedCall):
    """State, timeline and transcript of one call; waiting for and asserting on replies."""

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
        check_call(app_url, account_sid, auth_token)
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
        self.on_ended: list[Callable[[Any], Any]] = []  # called with the Caller
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

    def __repr__(self) -> str:
        return (
            f"Caller(call_sid={self.call_sid!r}, from_={self.from_!r}, to={self.to!r},"
            f" status={self.status!r})"
        )

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

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

    def _require_open(self, action: str) -> ClientConnection:
        if self._ws is None or self.status != "in-progress":
            raise CallEnded(
                f"cannot {action}: call {self.call_sid} is {self.status}"
                + (f" ({self.end_reason})" if self.end_reason else "")
            )
        return self._ws

    @property
    def _customer(self) -> str:
        return self.from_ if self.direction == "inbound" else self.to

    @property
    def _agent(self) -> str:
        return self.to if self.direction == "inbound" else self.from_

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

    async def wait_ended(self, timeout: float | None = None) -> Self:
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
    ) -> Self:
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
