"""The sandbox answering the app's Media Streams calls (installed like a product).

A Calls API call whose TwiML is ``<Connect><Stream>`` (bus topic ``call.created``) is answered
by a :class:`~tac_sandbox.StreamCaller` in the sandbox process. When the app updates the live
call (``call.updated``): ``Status=completed`` hangs it up; new TwiML with ``<Redirect>`` (a
handoff) stops the stream and requests the redirect's URL, as Twilio does. ``GET
/sandbox/voice/streams`` lists these calls; tests in the sandbox's process reach them with
``ctx.service("voice.stream_phone")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter

from tac_sandbox._context import SandboxContext
from tac_sandbox.phone.phones import Phone
from tac_sandbox.phone.stream_caller import StreamCaller, StreamCallFailed
from tac_sandbox.phone.stream_twiml import is_stream_twiml, parse_redirect
from tac_sandbox.products._common import on_reset

logger = logging.getLogger("tac_sandbox.stream_phone")


class StreamPhone(Phone[StreamCaller]):
    """Every Media Streams call the sandbox answered, by CallSid."""

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self._answered: dict[str, str] = {}  # CallSid -> the TwiML it was answered with
        self._handed: set[str] = set()
        self._changed = asyncio.Event()

    async def _set_status(self, call_sid: str, status: str) -> None:
        set_status = self.ctx.service("calls.set_status")
        if set_status is not None:
            with contextlib.suppress(Exception):
                await set_status(call_sid, status)

    async def on_call_created(self, payload: dict[str, Any]) -> None:
        """A Calls API call: answer it if its TwiML connects a Media Stream."""
        call = payload.get("call") or {}
        twiml = (payload.get("params") or {}).get("Twiml")
        if isinstance(twiml, str) and is_stream_twiml(twiml):
            self._spawn(self._answer(call, twiml))

    async def _answer(self, call: dict[str, Any], twiml: str) -> None:
        call_sid = str(call.get("sid") or "")
        identity = self.ctx.identity
        caller = StreamCaller(
            self.ctx.settings.app_url,
            account_sid=identity.account_sid,
            auth_token=identity.auth_token,
            from_=str(call.get("from", "")),
            to=str(call.get("to", "")),
            direction="outbound-api",
            call_sid=call_sid,
            sandbox_url=self.ctx.settings.base_url(),
            sandbox_auth=(identity.api_key, identity.api_secret),
        )
        self.calls[call_sid] = caller
        self._answered[call_sid] = twiml
        try:
            await self._set_status(call_sid, "ringing")
            await self._set_status(call_sid, "in-progress")
            await caller.dial(twiml=twiml)
        except StreamCallFailed as exc:
            logger.warning("answering stream call %s failed: %s", call_sid, exc)
        except Exception:
            logger.exception("answering stream call %s failed", call_sid)
        finally:
            self._changed.set()
        self._spawn(self._completed_when_ended(caller))

    async def _completed_when_ended(self, caller: StreamCaller) -> None:
        await caller.wait_ended(timeout=24 * 3600)
        if caller.status != "redirected":
            await self._set_status(caller.call_sid, "completed")

    async def on_call_updated(self, payload: dict[str, Any]) -> None:
        """The app ended or redirected one of these calls through the Calls API."""
        caller = self._updated(payload)
        if caller is None:
            return
        twiml = (payload.get("params") or {}).get("Twiml")
        if isinstance(twiml, str) and twiml != self._answered.get(caller.call_sid):
            redirect = parse_redirect(twiml)
            if redirect is not None:
                self._answered[caller.call_sid] = twiml
                self._spawn(self._follow(caller, *redirect))

    async def _follow(self, caller: StreamCaller, url: str, method: str) -> None:
        try:
            await caller.redirect(url, method)
        except Exception:
            logger.exception("following the redirect of %s failed", caller.call_sid)
        self._changed.set()

    async def next_call(self, timeout: float = 10.0) -> StreamCaller:
        """The first answered call not returned before (``TimeoutError`` if none)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for call_sid, caller in self.calls.items():
                if call_sid not in self._handed and caller.status != "new":
                    self._handed.add(call_sid)
                    return caller
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no Media Streams call answered within {timeout}s")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.1))

    async def reset(self) -> None:
        await self._hang_up_all()
        self._answered.clear()
        self._handed.clear()

    async def aclose(self) -> None:
        await self._close_calls()
        self._cancel_tasks()


def install(ctx: SandboxContext) -> None:
    """Answer Media Streams calls; ``GET /sandbox/voice/streams`` lists them."""
    phone = StreamPhone(ctx)
    ctx.provide("voice.stream_phone", phone)
    ctx.bus.subscribe("call.created", phone.on_call_created)
    ctx.bus.subscribe("call.updated", phone.on_call_updated)
    ctx.on_shutdown(phone.aclose)
    on_reset(ctx, phone.reset)
    router = APIRouter(prefix="/voice", tags=["control"])

    @router.get("/streams")
    async def streams() -> dict[str, Any]:
        """Every Media Streams call the sandbox answered, oldest first."""
        return {"calls": [caller.summary() for caller in phone.calls.values()]}

    @router.get("/streams/{call_sid}")
    async def stream(call_sid: str) -> dict[str, Any]:
        return phone.get(call_sid).summary()

    ctx.add_control(router)
