"""The sandbox's phone line: place calls to the app, answer its outbound calls, drive both.

Installed like a product (``install(ctx)``): control routes under ``/sandbox/voice``, the
answering of Calls API calls whose TwiML connects to ConversationRelay (bus topic
``call.created``), and the hang-up of answered calls the app ends through the Calls API
(``call.updated``). Calls placed or answered here run inside the sandbox process; tests drive
them over HTTP (``SandboxClient``/``VoiceCall``) or in-process (``ctx.products.phone``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from tac_sandbox._context import SandboxContext
from tac_sandbox._errors import TwilioError, bad_request
from tac_sandbox._signing import sign_form
from tac_sandbox.phone.caller import (
    DEFAULT_FROM,
    CallEnded,
    Caller,
    CallerError,
    CallFailed,
    tls_context,
)
from tac_sandbox.phone.edge import through_edge
from tac_sandbox.phone.orchestrator import VoiceConversations
from tac_sandbox.phone.phones import Phone
from tac_sandbox.products._common import on_reset

logger = logging.getLogger("tac_sandbox.voice")

_LONG_POLL_MAX = 60.0


class VoicePhone(Phone[Caller]):
    """Every call the sandbox placed or answered, by CallSid, in order."""

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self._order: list[str] = []
        self._http: httpx.AsyncClient | None = None
        self._changed = asyncio.Event()
        self.link = VoiceConversations(ctx)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0, verify=tls_context())
        return self._http

    def _caller(self, **options: Any) -> Caller:
        identity = self.ctx.identity
        return Caller(
            options.pop("app_url", None) or self.ctx.settings.app_url,
            account_sid=identity.account_sid,
            auth_token=identity.auth_token,
            sandbox_url=self.ctx.settings.base_url(),
            orchestrator=self.link,
            http_client=self.http,
            **options,
        )

    def _register(self, caller: Caller) -> None:
        self.calls[caller.call_sid] = caller
        self._order.append(caller.call_sid)
        self._notify()
        caller.on_ended.append(lambda _: self._notify())

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def place_call(
        self,
        *,
        from_: str | None = None,
        to: str | None = None,
        params: dict[str, str] | None = None,
        custom_parameters: dict[str, str] | None = None,
        app_url: str | None = None,
        twiml_path: str = "/twiml",
        caller_name: str = "",
    ) -> Caller:
        """Call the app (inbound to its number); returns once the session is set up."""
        caller = self._caller(
            from_=from_ or DEFAULT_FROM,
            to=to or self.ctx.identity.phone_number,
            app_url=app_url,
            twiml_path=twiml_path,
            caller_name=caller_name,
        )
        self._register(caller)
        await caller.dial(params=params, custom_parameters=custom_parameters)
        return caller

    def listed(self, direction: str | None = None, after: int = 0) -> list[tuple[int, Caller]]:
        return [
            (seq, self.calls[call_sid])
            for seq, call_sid in enumerate(self._order, start=1)
            if seq > after and (direction is None or self.calls[call_sid].direction == direction)
        ]

    async def wait_for_calls(
        self, direction: str | None, after: int, wait: float
    ) -> list[tuple[int, Caller]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            found = self.listed(direction, after)
            remaining = deadline - loop.time()
            if found or remaining <= 0:
                return found
            event = self._changed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    # ---------------------------------------------------------------- outbound calls

    async def on_call_created(self, payload: dict[str, Any]) -> None:
        """A Calls API call: answer it if its TwiML connects to ConversationRelay."""
        call = payload.get("call") or {}
        params = payload.get("params") or {}
        twiml = params.get("Twiml")
        url = params.get("Url")
        if isinstance(twiml, str) and "<ConversationRelay" not in twiml:
            return
        if twiml is None and not isinstance(url, str):
            return
        self._spawn(self._answer(call, params))

    async def _answer(self, call: dict[str, Any], params: dict[str, Any]) -> None:
        call_sid = str(call.get("sid") or "")
        if not call_sid.startswith("CA"):
            logger.warning("call.created without a CallSid: %r", call)
            return
        caller = self._caller(
            from_=str(call.get("from", "")),
            to=str(call.get("to", "")),
            direction="outbound-api",
            call_sid=call_sid,
        )
        progress = _CallProgress(self, caller, params)
        caller.on_ended.append(progress.ended)
        try:
            await progress.status("initiated", publish=None)
            await progress.status("ringing", publish="ringing")
            await progress.status("answered", publish="in-progress")
            twiml = params.get("Twiml")
            url = params.get("Url")
            await caller.dial(
                twiml=twiml if isinstance(twiml, str) else None,
                twiml_url=url if isinstance(url, str) and twiml is None else None,
            )
            await progress.amd()  # async AMD reports after the call is connected
        except (CallerError, TwilioError) as exc:
            logger.warning("answering call %s failed: %s", call_sid, exc)
        except Exception:
            logger.exception("answering call %s failed", call_sid)
        finally:
            # listed once answered (or failed), so a test waiting for it can talk at once
            self._register(caller)

    async def on_call_updated(self, payload: dict[str, Any]) -> None:
        """The app ended (or redirected) an answered call through the Calls API."""
        self._updated(payload)

    async def reset(self) -> None:
        """Hang up every call and forget them."""
        await self._hang_up_all()
        self._order.clear()
        self._notify()

    async def aclose(self) -> None:
        self._cancel_tasks()
        await self._close_calls()
        if self._http is not None:
            await self._http.aclose()
            self._http = None


class _CallProgress:
    """Twilio's progress callbacks for an outbound call the sandbox answers: status
    callbacks (``StatusCallbackEvent``), the async AMD result and the recording status."""

    def __init__(self, phone: VoicePhone, caller: Caller, params: dict[str, Any]) -> None:
        self.phone = phone
        self.caller = caller
        self.params = params
        self.sequence = 0
        self.answered_at: float | None = None
        events = params.get("StatusCallbackEvent") or []
        if isinstance(events, str):
            events = [events]
        self.events = {e for value in events for e in str(value).split()} or {"completed"}

    def _value(self, name: str) -> str | None:
        value = self.params.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        return str(value) if value is not None else None

    async def status(self, event: str, *, publish: str | None) -> None:
        if publish is not None:
            calls = self.phone.ctx.products.calls
            if calls is not None:
                await calls.set_status(self.caller.call_sid, publish)
        if event == "answered":
            self.answered_at = time.time()
        call_status = {"initiated": "queued", "answered": "in-progress"}.get(event, event)
        await self._status_callback(call_status, event)

    async def _status_callback(self, call_status: str, event: str) -> None:
        url = self._value("StatusCallback")
        if not url or event not in self.events:
            return
        fields = self._base_fields()
        fields.update(
            {
                "CallStatus": call_status,
                "CallbackSource": "call-progress-events",
                "SequenceNumber": str(self.sequence),
                "Timestamp": _rfc2822(time.time()),
            }
        )
        self.sequence += 1
        if call_status == "completed":
            fields["CallDuration"] = str(self._duration())
            fields["SipResponseCode"] = "200"
        method = (self._value("StatusCallbackMethod") or "POST").upper()
        await self._send(url, fields, method, "status-callback")

    async def amd(self) -> None:
        if self._value("MachineDetection") is None:
            return
        if (self._value("AsyncAmd") or "false").lower() != "true":
            return
        url = self._value("AsyncAmdStatusCallback")
        if not url:
            return
        fields = {
            "AccountSid": self.caller.account_sid,
            "CallSid": self.caller.call_sid,
            "AnsweredBy": "human",
            "MachineDetectionDuration": "1200",
        }
        method = (self._value("AsyncAmdStatusCallbackMethod") or "POST").upper()
        await self._send(url, fields, method, "amd-callback")

    async def ended(self, caller: Caller) -> None:
        calls = self.phone.ctx.products.calls
        final = "completed" if caller.connected_at is not None else "failed"
        if calls is not None:
            current = calls.get(caller.call_sid)
            if current is None or current.get("status") not in ("completed", "canceled"):
                with contextlib.suppress(Exception):
                    await calls.set_status(caller.call_sid, final)
        await self._status_callback(final, "completed")
        await self._recording()

    async def _recording(self) -> None:
        if (self._value("Record") or "false").lower() != "true":
            return
        url = self._value("RecordingStatusCallback")
        if not url:
            return
        account = self.caller.account_sid
        recording = f"RE{self.caller.call_sid[2:]}"
        fields = {
            "AccountSid": account,
            "CallSid": self.caller.call_sid,
            "RecordingSid": recording,
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{recording}",
            "RecordingStatus": "completed",
            "RecordingDuration": str(self._duration()),
            "RecordingChannels": "2" if self._value("RecordingChannels") == "dual" else "1",
            "RecordingStartTime": _rfc2822(self.answered_at or time.time()),
            "RecordingSource": "OutboundAPI",
            "RecordingTrack": self._value("RecordingTrack") or "both",
        }
        method = (self._value("RecordingStatusCallbackMethod") or "POST").upper()
        await self._send(url, fields, method, "recording-callback")

    def _duration(self) -> int:
        return max(0, int(time.time() - self.answered_at)) if self.answered_at else 0

    def _base_fields(self) -> dict[str, str]:
        caller = self.caller
        return {
            "AccountSid": caller.account_sid,
            "ApiVersion": "2010-04-01",
            "CallSid": caller.call_sid,
            "Called": caller.to,
            "Caller": caller.from_,
            "Direction": caller.direction,
            "From": caller.from_,
            "To": caller.to,
        }

    async def _send(self, url: str, fields: dict[str, str], method: str, kind: str) -> None:
        token = self.caller.auth_token
        record: dict[str, Any] = {"url": url, "method": method, "fields": fields}
        try:
            target, edge_headers = through_edge(url, self.caller.app_url)
            if method == "GET":
                signature = sign_form(_with_query(url, fields), {}, token)
                response = await self.phone.http.get(
                    target,
                    params=fields,
                    headers={"X-Twilio-Signature": signature, **edge_headers},
                )
            else:
                signature = sign_form(url, fields, token)
                response = await self.phone.http.post(
                    target, data=fields, headers={"X-Twilio-Signature": signature, **edge_headers}
                )
            record["status"] = response.status_code
        except httpx.HTTPError as exc:
            record["error"] = repr(exc)
        self.caller.record_event("http", kind, record)


def _rfc2822(moment: float) -> str:
    """``Tue, 06 Jan 2026 18:31:40 +0000``, as Twilio's voice callbacks write times."""
    return format_datetime(datetime.fromtimestamp(int(moment), timezone.utc))


def _with_query(url: str, fields: dict[str, str]) -> str:
    return str(httpx.URL(url, params=fields))


# -------------------------------------------------------------------- control API


class PlaceCallIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str | None = Field(default=None, alias="from", min_length=1)
    to: str | None = Field(default=None, min_length=1)
    params: dict[str, str] | None = Field(
        default=None, description="Extra form fields of the TwiML request"
    )
    customParameters: dict[str, str] | None = Field(
        default=None, description="Added to setup.customParameters over the TwiML's <Parameter>s"
    )
    appUrl: str | None = Field(default=None, description="Default: the sandbox's app_url")
    twimlPath: str = "/twiml"
    callerName: str = ""


class SayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    partials: bool | list[str] = False
    lang: str | None = None


class PressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    digits: str = Field(min_length=1)


class InterruptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    utterance: str | None = None
    durationMs: int | None = Field(default=None, ge=0)


class VoiceConversationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    configurationId: str = Field(min_length=1)
    callSid: str = Field(min_length=1)
    customer: str = Field(min_length=1)
    agent: str = Field(min_length=1)


class VoiceCommunicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callSid: str = Field(min_length=1)
    author: str = Field(min_length=1)
    recipient: str = Field(min_length=1)
    text: str
    inbound: bool


def _details(caller: Caller) -> dict[str, Any]:
    return {
        **caller.summary(),
        "transcript": [line.to_json() for line in caller.transcript],
        "transcriptText": caller.transcript_text(),
    }


def _wait(value: float) -> float:
    return max(0.0, min(value, _LONG_POLL_MAX))


def control_router(phone: VoicePhone) -> APIRouter:
    """``/sandbox/voice/...``: place calls, act as the caller, read replies and timelines."""
    router = APIRouter(prefix="/voice", tags=["control"])

    @router.post("/calls", status_code=201)
    async def place_call(body: PlaceCallIn) -> dict[str, Any]:
        """Call the app; answers once the ConversationRelay session is set up."""
        try:
            caller = await phone.place_call(
                from_=body.from_,
                to=body.to,
                params=body.params,
                custom_parameters=body.customParameters,
                app_url=body.appUrl,
                twiml_path=body.twimlPath,
                caller_name=body.callerName,
            )
        except ValueError as exc:
            raise bad_request(str(exc)) from exc
        except CallFailed as exc:
            raise TwilioError(502, f"the call could not be connected: {exc}") from exc
        return _details(caller)

    @router.get("/calls")
    async def list_calls(
        direction: str | None = None, after: int = 0, wait: float = 0.0
    ) -> dict[str, Any]:
        """Calls placed or answered, oldest first; long-polls ``wait`` s for one after ``after``."""
        found = await phone.wait_for_calls(direction, after, _wait(wait))
        return {
            "calls": [{"seq": seq, **caller.summary()} for seq, caller in found],
            "cursor": found[-1][0] if found else after,
        }

    @router.delete("/calls", status_code=204)
    async def forget_calls() -> None:
        """Hang up every call and forget them."""
        await phone.reset()

    @router.get("/calls/{call_sid}")
    async def get_call(call_sid: str, wait_ended: float = 0.0) -> dict[str, Any]:
        """One call with its transcript; ``wait_ended`` long-polls until it is over."""
        caller = phone.get(call_sid)
        if wait_ended:
            await caller.wait_for(lambda: caller.ended, _wait(wait_ended))
        return _details(caller)

    @router.post("/calls/{call_sid}/say")
    async def say(call_sid: str, body: SayIn) -> dict[str, Any]:
        """The caller speaks (``prompt``; ``partials`` sends ``last: false`` prompts first)."""
        caller = phone.get(call_sid)
        await _act(caller.say(body.text, partials=body.partials, lang=body.lang))
        return {"callSid": call_sid, "said": body.text}

    @router.post("/calls/{call_sid}/press")
    async def press(call_sid: str, body: PressIn) -> dict[str, Any]:
        """The caller presses keys (one ``dtmf`` frame per digit)."""
        caller = phone.get(call_sid)
        await _act(caller.press(body.digits))
        return {"callSid": call_sid, "pressed": body.digits}

    @router.post("/calls/{call_sid}/interrupt")
    async def interrupt(call_sid: str, body: InterruptIn) -> dict[str, Any]:
        """The caller barges in; answers with the ``interrupt`` frame sent."""
        caller = phone.get(call_sid)
        frame: dict[str, Any] = await _act(caller.interrupt(body.utterance, body.durationMs))
        return frame

    @router.post("/calls/{call_sid}/hangup")
    async def hang_up(call_sid: str) -> dict[str, Any]:
        """The caller hangs up (the socket closes; the ``<Connect action>`` is called)."""
        caller = phone.get(call_sid)
        await caller.hang_up()
        return _details(caller)

    @router.get("/calls/{call_sid}/replies")
    async def replies(call_sid: str, after: int = 0, wait: float = 0.0) -> dict[str, Any]:
        """Complete replies from index ``after`` on; long-polls ``wait`` s for one."""
        caller = phone.get(call_sid)
        if after < 0:
            raise bad_request("after must be 0 or more")
        await caller.wait_for(lambda: len(caller.replies) > after or caller.ended, _wait(wait))
        found = caller.replies[after:]
        return {
            "replies": [reply.to_json() for reply in found],
            "cursor": after + len(found),
            "ended": caller.ended,
            "partialReply": caller.partial_reply,
        }

    @router.get("/calls/{call_sid}/transcript")
    async def transcript(call_sid: str) -> dict[str, Any]:
        caller = phone.get(call_sid)
        return {
            "transcript": [line.to_json() for line in caller.transcript],
            "text": caller.transcript_text(),
        }

    @router.get("/calls/{call_sid}/events")
    async def events(call_sid: str, after: int = 0) -> dict[str, Any]:
        """The call's timeline: frames sent and received, HTTP requests, changes."""
        caller = phone.get(call_sid)
        return {
            "events": [event.to_json() for event in caller.events[after:]],
            "cursor": len(caller.events),
        }

    @router.post("/conversations", status_code=201)
    async def voice_conversation(body: VoiceConversationIn) -> dict[str, Any]:
        """Create a call's Orchestrator conversation as Twilio does (for out-of-process callers)."""
        created: dict[str, Any] = await _act(
            phone.link.create_voice_conversation(
                body.configurationId, body.callSid, body.customer, body.agent
            )
        )
        return created

    @router.post("/conversations/{conversation_id}/communications", status_code=201)
    async def voice_communication(
        conversation_id: str, body: VoiceCommunicationIn
    ) -> dict[str, Any]:
        """Record an utterance of a call as a TRANSCRIPTION communication."""
        stored: dict[str, Any] = await _act(
            phone.link.add_voice_communication(
                conversation_id,
                body.callSid,
                author=body.author,
                recipient=body.recipient,
                text=body.text,
                inbound=body.inbound,
            )
        )
        return stored

    return router


async def _act(action: Any) -> Any:
    """Await a caller action; its refusals become 4xx answers."""
    try:
        return await action
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
    except CallEnded as exc:
        raise TwilioError(409, str(exc)) from exc
    except CallerError as exc:
        raise TwilioError(409, str(exc)) from exc


def install(ctx: SandboxContext) -> None:
    """Add the phone: ``/sandbox/voice`` controls and the answering of outbound calls."""
    phone = VoicePhone(ctx)
    ctx.products.phone = phone
    ctx.products.voice_conversations = phone.link
    ctx.add_control(control_router(phone))
    ctx.bus.subscribe("call.created", phone.on_call_created)
    ctx.bus.subscribe("call.updated", phone.on_call_updated)
    ctx.on_shutdown(phone.aclose)
    on_reset(ctx, phone.reset)
