"""Twilio's side of an open ConversationRelay session: frames in and out, the
``<Connect action>`` callback, the end of the call."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import ssl
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import certifi
import httpx
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tac_sandbox._signing import sign_form
from tac_sandbox._twiml import verbs
from tac_sandbox.phone.edge import through_edge, to_sandbox
from tac_sandbox.phone.record import (
    API_VERSION,
    MALFORMED_LIMIT,
    CallEnded,
    CallRecord,
    Line,
    Reply,
    _ReplyInProgress,
    logger,
)
from tac_sandbox.phone.relay import (
    validate_app_message,
)


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One verified TLS context for every caller's HTTP client (loading CAs takes ~50 ms)."""
    return ssl.create_default_context(cafile=certifi.where())


class CallSession(CallRecord):
    """Frames to and from the app, the action callback, and finishing the call."""

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
        url, basic = to_sandbox(twiml.action, self.sandbox_url, self._sandbox_auth)
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

    async def _report_failure(self, message: str) -> None:
        self.end_reason = "failed"
        await self._callback(session_status="failed", error=("64105", message))
