"""The web console: a phone, the customer's memory, a Flex inbox and a live log, in a browser.

``GET /console`` serves one page (static files shipped in the package: no CDN, nothing fetched
at run time) to clients on this machine only. The page drives the sandbox through its control
API as any client does (``/sandbox/customers``, ``/sandbox/voice``, ``/sandbox/flex``, the
Memory product), with the sandbox's credentials, which the page is given because whoever can
open it on this machine can read them anyway. Two read-only long-polls exist for the console:

- ``GET /sandbox/console/calls/{sid}/events?after=&wait=``: a call's timeline as it grows (the
  agent's reply arrives token by token);
- ``GET /sandbox/console/log?after=&wait=``: API requests and webhook deliveries, with latency.
"""

from __future__ import annotations

import asyncio
import html
import ipaddress
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from tac_sandbox._context import SandboxContext
from tac_sandbox._errors import TwilioError, bad_request, not_found

STATIC_DIR = Path(__file__).with_name("console")
_LONG_POLL_MAX = 30.0
_LOG_POLL_SECONDS = 0.1
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def install(ctx: SandboxContext) -> None:
    """Add the console's read-only long-polls under ``/sandbox/console``."""
    ctx.add_control(_control_router(ctx))


def mount(app: FastAPI, ctx: SandboxContext) -> None:
    """Serve the console page at ``/console`` and its files under ``/console/static``."""
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")

    @app.get("/console", include_in_schema=False)
    async def console(request: Request) -> HTMLResponse:
        _require_local(request)
        page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        identity = ctx.identity
        config = {
            "apiKey": identity.api_key,
            "apiSecret": identity.api_secret,
            "memoryStoreId": identity.memory_store_id,
            "phoneNumber": identity.phone_number,
        }
        # Escaped for an HTML attribute: the page reads it with JSON.parse.
        return HTMLResponse(
            page.replace("{{CONFIG}}", html.escape(json.dumps(config), quote=True)),
            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
        )


def _require_local(request: Request) -> None:
    """Only a browser on this machine, addressing the sandbox by a loopback name, gets the
    page (and so the credentials): not other hosts, not a DNS-rebound name."""
    client = request.client.host if request.client else ""
    try:
        local = ipaddress.ip_address(client).is_loopback
    except ValueError:
        local = False
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not local or name not in _LOOPBACK_NAMES:
        raise TwilioError(403, "The console is only served to this machine (http://127.0.0.1)")


def _wait(value: float) -> float:
    return max(0.0, min(value, _LONG_POLL_MAX))


def _control_router(ctx: SandboxContext) -> APIRouter:
    router = APIRouter(prefix="/console", tags=["control"])

    @router.get("/calls/{call_sid}/events")
    async def call_events(call_sid: str, after: int = 0, wait: float = 0.0) -> dict[str, Any]:
        """The call's timeline from index ``after`` on; long-polls ``wait`` s for more."""
        if after < 0:
            raise bad_request("after must be 0 or more")
        phone = ctx.products.phone
        if phone is None:
            raise not_found("Call", call_sid)
        caller = phone.get(call_sid)
        await caller.wait_for(lambda: len(caller.events) > after or caller.ended, _wait(wait))
        events = caller.events[after:]
        return {
            "events": [event.to_json() for event in events],
            "cursor": after + len(events),
            "ended": caller.ended and len(caller.events) == after + len(events),
        }

    @router.get("/log")
    async def log(after: float = 0.0, wait: float = 0.0) -> dict[str, Any]:
        """API requests and webhook deliveries after time ``after`` (epoch seconds), oldest
        first; long-polls ``wait`` s for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _wait(wait)
        while True:
            entries = _log_entries(ctx, after)
            if entries or loop.time() >= deadline:
                break
            await asyncio.sleep(_LOG_POLL_SECONDS)
        return {"entries": entries, "cursor": max((e["at"] for e in entries), default=after)}

    return router


def _log_entries(ctx: SandboxContext, after: float) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for record in reversed(ctx.requests):  # newest first: stop at the first one already seen
        if record.at <= after:
            break
        label = f"{record.method} {record.path}"
        entries.append(_entry(record.at, "api", label, record.status, record.duration_ms))
    dispatcher = ctx.products.webhooks
    for delivery in dispatcher.deliveries() if dispatcher is not None else ():
        if delivery.at > after:
            label = f"{delivery.event_type} → {delivery.url}"
            status, ms = delivery.status_code, delivery.latency_ms
            entries.append(_entry(delivery.at, "webhook", label, status, ms, delivery.outcome))
    entries.sort(key=lambda entry: entry["at"])
    return entries


def _entry(
    at: float, kind: str, label: str, status: int | None, ms: float, outcome: str | None = None
) -> dict[str, Any]:
    entry = {"at": at, "kind": kind, "label": label, "status": status, "ms": round(ms, 2)}
    return entry if outcome is None else {**entry, "outcome": outcome}
