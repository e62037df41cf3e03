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
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from tac_sandbox._settings import SandboxIdentity
from tac_sandbox._signing import sign_form, sign_websocket
from tac_sandbox._twiml import RelayTwiml, TwimlError, parse_relay_twiml
from tac_sandbox.phone.edge import through_edge
from tac_sandbox.phone.links import (
    HttpOrchestratorLink,
    OrchestratorLink,
)
from tac_sandbox.phone.record import (
    _DIGITS,
    _SPEECH_INTERRUPTS,
    DEFAULT_FROM,
    DEFAULT_TO,
    MALFORMED_LIMIT,
    CallEnded,
    CallerError,
    CallEvent,
    CallFailed,
    Line,
    Reply,
    _ReplyInProgress,
)
from tac_sandbox.phone.relay import (
    validate_app_message,
)
from tac_sandbox.phone.session import (
    CallSession,
    tls_context,
)

__all__ = [
    "DEFAULT_FROM",
    "DEFAULT_TO",
    "MALFORMED_LIMIT",
    "CallEnded",
    "CallEvent",
    "CallFailed",
    "Caller",
    "CallerError",
    "HttpOrchestratorLink",
    "Line",
    "OrchestratorLink",
    "Reply",
    "tls_context",
    "validate_app_message",
]


class Caller(CallSession):
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
        fields = super()._call_fields(status)
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
