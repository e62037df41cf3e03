"""The Calls API (``https://api.twilio.com/2010-04-01``), served under ``/api``.

Create (``To``, ``From`` and one of ``Url``/``Twiml``/``ApplicationSid``; every option of
Twilio's Calls resource is accepted and validated), update (``Status=completed`` hangs up,
``canceled`` cancels a call not yet answered, ``Url``/``Twiml`` redirect), fetch and list.
Calls are recorded; nothing dials: the sandbox's voice caller subscribes to the bus.

Bus topics published: ``call.created`` ``{"call", "params"}`` and ``call.updated``
``{"call", "previous_status", "status", "params"}`` (``params``: the form fields, a list for a
repeated field). The phone uses it as ``ctx.products.calls`` (``get``, ``set_status``).
Control API: ``GET /sandbox/calls``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from tac_sandbox._context import SandboxContext
from tac_sandbox._db import dumps, loads
from tac_sandbox._errors import TwilioError, bad_request
from tac_sandbox._ids import sid
from tac_sandbox.products._common import first, form_fields, on_reset, rfc2822, utcnow

API_VERSION = "2010-04-01"
STATUSES = (
    "queued",
    "ringing",
    "in-progress",
    "completed",
    "busy",
    "failed",
    "no-answer",
    "canceled",
)
ENDED = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
_METHODS = ("GET", "POST")
_ENUMS: dict[str, tuple[str, ...]] = {
    "Method": _METHODS,
    "FallbackMethod": _METHODS,
    "StatusCallbackMethod": _METHODS,
    "RecordingStatusCallbackMethod": _METHODS,
    "AsyncAmdStatusCallbackMethod": _METHODS,
    "MachineDetection": ("Enable", "DetectMessageEnd"),
    "AsyncAmd": ("true", "false"),
    "Record": ("true", "false"),
    "RecordingChannels": ("mono", "dual"),
    "RecordingTrack": ("inbound", "outbound", "both"),
    "Trim": ("trim-silence", "do-not-trim"),
}
_LIST_ENUMS: dict[str, tuple[str, ...]] = {
    "StatusCallbackEvent": ("initiated", "ringing", "answered", "completed"),
    "RecordingStatusCallbackEvent": ("in-progress", "completed", "absent"),
}
_INTEGERS: dict[str, tuple[int, int]] = {
    "Timeout": (1, 600),
    "TimeLimit": (1, 86400),
    "MachineDetectionTimeout": (3, 59),
    "MachineDetectionSpeechThreshold": (1000, 6000),
    "MachineDetectionSpeechEndThreshold": (500, 5000),
    "MachineDetectionSilenceTimeout": (2000, 10000),
}
_URLS = (
    "Url",
    "FallbackUrl",
    "StatusCallback",
    "RecordingStatusCallback",
    "AsyncAmdStatusCallback",
    "ClientNotificationUrl",
)
_SCHEMA = """
CREATE TABLE calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE, doc TEXT NOT NULL,
    params TEXT NOT NULL
);
"""


def formatted_number(number: str) -> str:
    """``+14155550123`` → ``(415) 555-0123``, as Twilio formats North American numbers."""
    digits = number[2:] if number.startswith("+1") else ""
    if len(digits) == 10 and digits.isdigit():
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return number


def _flat(fields: dict[str, list[str]]) -> dict[str, Any]:
    return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}


def validate_options(fields: dict[str, list[str]], *, creating: bool) -> None:
    """Twilio-shaped 400s for a bad Calls create/update form."""
    if creating:
        if not first(fields, "To"):
            raise TwilioError(400, "Required parameter To is missing.", code=21201)
        if not first(fields, "From"):
            raise TwilioError(400, "Required parameter From is missing.", code=21213)
        if not any(first(fields, name) for name in ("Url", "Twiml", "ApplicationSid")):
            raise bad_request("Either Url, Twiml or ApplicationSid is required.", code=21205)
    twiml = first(fields, "Twiml")
    if twiml is not None and len(twiml) > 4000:
        raise bad_request(f"Twiml is longer than 4000 characters ({len(twiml)}).")
    for name in _URLS:
        value = first(fields, name)
        if value and not value.startswith(("http://", "https://")):
            raise bad_request(f"{name} is not a valid URL: {value}", code=21205)
    for name, allowed in _ENUMS.items():
        value = first(fields, name)
        if value is not None and value not in allowed:
            raise bad_request(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    for name, allowed in _LIST_ENUMS.items():
        for value in _split_events(fields.get(name, [])):
            if value not in allowed:
                raise bad_request(f"{name} must be among {', '.join(allowed)}; got {value!r}")
    for name, (low, high) in _INTEGERS.items():
        value = first(fields, name)
        if value is None:
            continue
        if not value.lstrip("-").isdigit():
            raise bad_request(f"{name} must be an integer; got {value!r}")
        number = int(value)
        if name == "Timeout" and number > high:
            continue  # Twilio caps the ring time at 600 seconds
        if not low <= number <= high:
            raise bad_request(f"{name} must be between {low} and {high}; got {value}")


def _split_events(values: list[str]) -> list[str]:
    """Events may repeat or be space-separated within one value."""
    return [event for value in values for event in value.split() if event]


class CallsService:
    """Calls placed through the Calls API, in SQLite, and their status changes."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    def require_account(self, account_sid: str) -> None:
        if account_sid != self.ctx.identity.account_sid:
            raise TwilioError(
                404,
                f"The requested resource /{API_VERSION}/Accounts/{account_sid} was not found",
            )

    def get(self, call_sid: str) -> dict[str, Any] | None:
        row = self.ctx.db.one("SELECT doc FROM calls WHERE sid = ?", (call_sid,))
        return loads(row["doc"]) if row is not None else None

    def params(self, call_sid: str) -> dict[str, Any]:
        row = self.ctx.db.one("SELECT params FROM calls WHERE sid = ?", (call_sid,))
        return loads(row["params"]) if row is not None else {}

    def require_call(self, call_sid: str) -> dict[str, Any]:
        call = self.get(call_sid)
        if call is None:
            account = self.ctx.identity.account_sid
            raise TwilioError(
                404,
                f"The requested resource /{API_VERSION}/Accounts/{account}/Calls/{call_sid}.json"
                " was not found",
            )
        return call

    def create(self, fields: dict[str, list[str]]) -> dict[str, Any]:
        validate_options(fields, creating=True)
        account = self.ctx.identity.account_sid
        call_sid = sid("CA")
        now = rfc2822(utcnow())
        to, from_ = first(fields, "To") or "", first(fields, "From") or ""
        uri = f"/{API_VERSION}/Accounts/{account}/Calls/{call_sid}"
        call = {
            "account_sid": account,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": now,
            "date_updated": now,
            "direction": "outbound-api",
            "duration": None,
            "end_time": None,
            "forwarded_from": None,
            "from": from_,
            "from_formatted": formatted_number(from_),
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": sid("PN"),
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": call_sid,
            "start_time": None,
            "status": "queued",
            "subresource_uris": {
                "notifications": f"{uri}/Notifications.json",
                "recordings": f"{uri}/Recordings.json",
            },
            "to": to,
            "to_formatted": formatted_number(to),
            "trunk_sid": None,
            "uri": f"{uri}.json",
        }
        self.ctx.db.execute(
            "INSERT INTO calls (sid, doc, params) VALUES (?, ?, ?)",
            (call_sid, dumps(call), dumps(_flat(fields))),
        )
        return call

    def _save(self, call: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        call["date_updated"] = rfc2822(utcnow())
        if params is None:
            self.ctx.db.execute(
                "UPDATE calls SET doc = ? WHERE sid = ?", (dumps(call), call["sid"])
            )
        else:
            self.ctx.db.execute(
                "UPDATE calls SET doc = ?, params = ? WHERE sid = ?",
                (dumps(call), dumps(params), call["sid"]),
            )

    def _transition(self, call: dict[str, Any], status: str) -> None:
        now = utcnow()
        if status == "in-progress" and call["start_time"] is None:
            call["start_time"] = rfc2822(now)
        if status in ENDED and call["status"] not in ENDED:
            call["end_time"] = rfc2822(now)
            started = call["start_time"]
            if started is not None:
                begun = datetime.strptime(started, "%a, %d %b %Y %H:%M:%S %z")
                call["duration"] = str(max(0, int((now - begun).total_seconds())))
            else:
                call["duration"] = "0"
        call["status"] = status

    def update(self, call_sid: str, fields: dict[str, list[str]]) -> tuple[dict[str, Any], str]:
        call = self.require_call(call_sid)
        validate_options(fields, creating=False)
        previous = call["status"]
        status = first(fields, "Status")
        if status is not None and status not in ("completed", "canceled"):
            raise bad_request(f"Status must be completed or canceled; got {status!r}")
        redirect = any(first(fields, name) for name in ("Url", "Twiml"))
        if redirect and previous in ENDED:
            raise TwilioError(400, "Call is not in-progress. Cannot redirect.", code=21220)
        if status == "completed" and previous not in ENDED:
            self._transition(call, "completed")
        elif status == "canceled" and previous in ("queued", "ringing"):
            self._transition(call, "canceled")
        params = {**self.params(call_sid), **_flat(fields)}
        self._save(call, params)
        return call, previous

    async def set_status(
        self, call_sid: str, status: str, answered_by: str | None = None
    ) -> dict[str, Any]:
        """Move a call along (for the sandbox's voice caller); publishes ``call.updated``."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        call = self.require_call(call_sid)
        previous = call["status"]
        self._transition(call, status)
        if answered_by is not None:
            call["answered_by"] = answered_by
        self._save(call)
        await self.publish_update(call, previous)
        return call

    async def publish_update(self, call: dict[str, Any], previous: str) -> None:
        await self.ctx.bus.publish(
            "call.updated",
            {
                "call": call,
                "previous_status": previous,
                "status": call["status"],
                "params": self.params(call["sid"]),
            },
        )

    async def reset(self) -> None:
        """Forget every call."""
        self.ctx.db.execute("DELETE FROM calls")

    def all(self) -> list[dict[str, Any]]:
        rows = self.ctx.db.query("SELECT doc, params FROM calls ORDER BY seq")
        return [{"call": loads(row["doc"]), "params": loads(row["params"])} for row in rows]


def install(ctx: SandboxContext) -> None:
    """Add the Calls API under ``/api`` and ``GET /sandbox/calls``."""
    ctx.db.migrate("calls-1", _SCHEMA)
    service = CallsService(ctx)
    on_reset(ctx, service.reset)

    ctx.products.calls = service
    ctx.add_product("api", _router(service))
    ctx.add_control(_control_router(service))


def _router(service: CallsService) -> APIRouter:
    router = APIRouter(tags=["calls"])
    base = "/2010-04-01/Accounts/{account_sid}/Calls"

    @router.post(base + ".json")
    async def create_call(account_sid: str, request: Request) -> JSONResponse:
        service.require_account(account_sid)
        fields = await form_fields(request)
        call = service.create(fields)
        await service.ctx.bus.publish("call.created", {"call": call, "params": _flat(fields)})
        return JSONResponse(call, status_code=201)

    @router.get(base + ".json")
    async def list_calls(
        account_sid: str,
        to: Annotated[str | None, Query(alias="To")] = None,
        from_: Annotated[str | None, Query(alias="From")] = None,
        status: Annotated[str | None, Query(alias="Status")] = None,
        page_size: Annotated[int, Query(alias="PageSize", ge=1, le=1000)] = 50,
        page: Annotated[int, Query(alias="Page", ge=0)] = 0,
    ) -> dict[str, Any]:
        service.require_account(account_sid)
        calls = [
            record["call"]
            for record in reversed(service.all())
            if (to is None or record["call"]["to"] == to)
            and (from_ is None or record["call"]["from"] == from_)
            and (status is None or record["call"]["status"] == status)
        ]
        chosen = calls[page * page_size : (page + 1) * page_size]
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Calls.json"
        has_next = (page + 1) * page_size < len(calls)
        return {
            "calls": chosen,
            "start": page * page_size,
            "end": page * page_size + max(0, len(chosen) - 1),
            "page": page,
            "page_size": page_size,
            "first_page_uri": f"{uri}?PageSize={page_size}&Page=0",
            "previous_page_uri": f"{uri}?PageSize={page_size}&Page={page - 1}" if page else None,
            "next_page_uri": f"{uri}?PageSize={page_size}&Page={page + 1}" if has_next else None,
            "uri": f"{uri}?PageSize={page_size}&Page={page}",
        }

    @router.get(base + "/{call_sid}.json")
    async def get_call(account_sid: str, call_sid: str) -> dict[str, Any]:
        service.require_account(account_sid)
        return service.require_call(call_sid)

    @router.post(base + "/{call_sid}.json")
    async def update_call(account_sid: str, call_sid: str, request: Request) -> dict[str, Any]:
        service.require_account(account_sid)
        call, previous = service.update(call_sid, await form_fields(request))
        await service.publish_update(call, previous)
        return call

    return router


def _control_router(service: CallsService) -> APIRouter:
    router = APIRouter(tags=["control"])

    @router.get("/calls")
    async def calls() -> dict[str, Any]:
        """Every call placed through the Calls API, oldest first, with its form parameters."""
        return {"calls": service.all()}

    return router
