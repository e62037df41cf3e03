"""Studio v2 Flow Executions (``/studio``) and the voice handoff webhook (``/webhooks``).

A handoff is recorded, not run: the sandbox's flow (``identity.studio_flow_sid``) accepts
executions (form-encoded ``To``, ``From``, ``Parameters``) and keeps each with its parsed
parameters; the voice handoff target ``/webhooks/v1/Accounts/{AC}/Flows/{FW}?Trigger=incomingCall``
(the ``<Connect action>`` of a ConversationRelay session) records the call and its
``HandoffData`` and answers TwiML.

Control API (under ``/sandbox/studio``): ``GET /executions`` and ``GET /handoffs``.
Bus topics published: ``studio.execution.created`` ``{"execution", "parameters"}`` and
``studio.voice_handoff`` ``{"handoff"}``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from tac_sandbox._context import SandboxContext
from tac_sandbox._db import dumps, loads
from tac_sandbox._errors import TwilioError, bad_request, not_found
from tac_sandbox._ids import sid
from tac_sandbox.products._common import (
    first,
    form_fields,
    iso,
    on_reset,
    parse_time,
    utcnow,
)

STUDIO_BASE = "https://studio.twilio.com"
HANDOFF_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>{message}</Say></Response>'
HANDOFF_MESSAGE = "Connecting you to an agent."
_FLOW_SID = re.compile(r"^FW[0-9a-fA-F]{32}$")
_SCHEMA = """
CREATE TABLE studio_executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, sid TEXT NOT NULL UNIQUE, flow_sid TEXT NOT NULL,
    doc TEXT NOT NULL, parameters TEXT, date_created TEXT NOT NULL
);
CREATE TABLE studio_voice_handoffs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT NOT NULL
);
"""


class StudioService:
    """Executions and voice handoffs of the sandbox's Studio flow, in SQLite."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    def require_flow(self, flow_sid: str) -> None:
        if flow_sid != self.ctx.identity.studio_flow_sid:
            raise TwilioError(
                404, f"The requested resource /v2/Flows/{flow_sid} was not found", code=20404
            )

    def create_execution(self, flow_sid: str, fields: dict[str, list[str]]) -> dict[str, Any]:
        self.require_flow(flow_sid)
        to, from_ = first(fields, "To"), first(fields, "From")
        if not to:
            raise bad_request("Missing required parameter To in the post body")
        if not from_:
            raise bad_request("Missing required parameter From in the post body")
        raw_parameters = first(fields, "Parameters")
        parameters: Any = None
        if raw_parameters:
            try:
                parameters = json.loads(raw_parameters)
            except json.JSONDecodeError as exc:
                raise bad_request(f"Parameters is not valid JSON: {exc.msg}") from exc
            if not isinstance(parameters, dict):
                raise bad_request("Parameters must be a JSON object")
        execution_sid = sid("FN")
        now = iso(utcnow())
        url = f"{STUDIO_BASE}/v2/Flows/{flow_sid}/Executions/{execution_sid}"
        execution = {
            "url": url,
            "sid": execution_sid,
            "account_sid": self.ctx.identity.account_sid,
            "flow_sid": flow_sid,
            "context": {},
            "contact_channel_address": to,
            "contact_sid": sid("FC"),
            "flow_version": 1,
            "status": "active",
            "date_created": now,
            "date_updated": now,
            "initiated_by": sid("RQ"),
            "links": {"steps": f"{url}/Steps", "execution_context": f"{url}/Context"},
        }
        record = {"from": from_, "external_id": first(fields, "ExternalId")}
        self.ctx.db.execute(
            "INSERT INTO studio_executions (sid, flow_sid, doc, parameters, date_created)"
            " VALUES (?, ?, ?, ?, ?)",
            (execution_sid, flow_sid, dumps({**execution, "_record": record}), raw_parameters, now),
        )
        return execution

    def execution(self, flow_sid: str, execution_sid: str) -> dict[str, Any]:
        self.require_flow(flow_sid)
        row = self.ctx.db.one(
            "SELECT doc FROM studio_executions WHERE flow_sid = ? AND sid = ?",
            (flow_sid, execution_sid),
        )
        if row is None:
            raise not_found("Execution", execution_sid)
        doc: dict[str, Any] = loads(row["doc"])
        doc.pop("_record", None)
        return doc

    def recorded_executions(self) -> list[dict[str, Any]]:
        rows = self.ctx.db.query("SELECT doc, parameters FROM studio_executions ORDER BY seq")
        found = []
        for row in rows:
            doc = loads(row["doc"])
            record = doc.pop("_record", {})
            found.append(
                {
                    "execution": doc,
                    "to": doc["contact_channel_address"],
                    "from": record.get("from"),
                    "parameters": loads(row["parameters"]) if row["parameters"] else None,
                }
            )
        return found

    def record_voice_handoff(
        self, account_sid: str, flow_sid: str, trigger: str | None, fields: dict[str, list[str]]
    ) -> dict[str, Any]:
        params = {
            name: values[0] if len(values) == 1 else values for name, values in fields.items()
        }
        raw = first(fields, "HandoffData")
        handoff_data: Any = None
        if raw:
            try:
                handoff_data = json.loads(raw)
            except json.JSONDecodeError:
                handoff_data = raw
        handoff = {
            "accountSid": account_sid,
            "flowSid": flow_sid,
            "trigger": trigger,
            "callSid": first(fields, "CallSid"),
            "handoffData": handoff_data,
            "params": params,
            "at": iso(utcnow()),
        }
        self.ctx.db.execute("INSERT INTO studio_voice_handoffs (doc) VALUES (?)", (dumps(handoff),))
        return handoff

    async def reset(self) -> None:
        """Forget executions and voice handoffs."""
        with self.ctx.db.transaction() as conn:
            conn.execute("DELETE FROM studio_executions")
            conn.execute("DELETE FROM studio_voice_handoffs")

    def voice_handoffs(self) -> list[dict[str, Any]]:
        rows = self.ctx.db.query("SELECT doc FROM studio_voice_handoffs ORDER BY seq")
        return [loads(row["doc"]) for row in rows]


def install(ctx: SandboxContext) -> None:
    """Add Studio v2 under ``/studio``, the voice handoff under ``/webhooks``, and controls."""
    ctx.db.migrate("studio-1", _SCHEMA)
    service = StudioService(ctx)
    ctx.products.studio = service
    on_reset(ctx, service.reset)
    ctx.add_product("studio", _studio_router(service))
    ctx.add_product("webhooks", _webhooks_router(service))
    ctx.add_control(_control_router(service))


def _studio_router(service: StudioService) -> APIRouter:
    router = APIRouter(tags=["studio"])

    @router.post("/v2/Flows/{flow_sid}/Executions")
    async def create_execution(flow_sid: str, request: Request) -> JSONResponse:
        fields = await form_fields(request)
        execution = service.create_execution(flow_sid, fields)
        raw = first(fields, "Parameters")
        parameters = json.loads(raw) if raw else None
        await service.ctx.bus.publish(
            "studio.execution.created", {"execution": execution, "parameters": parameters}
        )
        return JSONResponse(execution, status_code=201)

    @router.get("/v2/Flows/{flow_sid}/Executions")
    async def list_executions(
        flow_sid: str,
        request: Request,
        status: str | None = None,
        date_from: Annotated[str | None, Query(alias="DateCreatedFrom")] = None,
        date_to: Annotated[str | None, Query(alias="DateCreatedTo")] = None,
        page_size: Annotated[int, Query(alias="PageSize", ge=1, le=1000)] = 50,
        page: Annotated[int, Query(alias="Page", ge=0)] = 0,
    ) -> dict[str, Any]:
        service.require_flow(flow_sid)
        start = parse_time(date_from, "DateCreatedFrom") if date_from else None
        end = parse_time(date_to, "DateCreatedTo") if date_to else None
        items = []
        for record in service.recorded_executions():
            execution = record["execution"]
            created = parse_time(execution["date_created"], "date_created")
            if execution["flow_sid"] != flow_sid or (status and execution["status"] != status):
                continue
            if (start and created < start) or (end and created >= end):
                continue
            items.append(execution)
        items.reverse()
        chosen = items[page * page_size : (page + 1) * page_size]
        url = f"{STUDIO_BASE}/v2/Flows/{flow_sid}/Executions"
        has_next = (page + 1) * page_size < len(items)
        return {
            "executions": chosen,
            "meta": {
                "page": page,
                "page_size": page_size,
                "first_page_url": f"{url}?PageSize={page_size}&Page=0",
                "previous_page_url": f"{url}?PageSize={page_size}&Page={page - 1}"
                if page > 0
                else None,
                "url": f"{url}?PageSize={page_size}&Page={page}",
                "next_page_url": f"{url}?PageSize={page_size}&Page={page + 1}"
                if has_next
                else None,
                "key": "executions",
            },
        }

    @router.get("/v2/Flows/{flow_sid}/Executions/{execution_sid}")
    async def get_execution(flow_sid: str, execution_sid: str) -> dict[str, Any]:
        return service.execution(flow_sid, execution_sid)

    @router.post("/v2/Flows/{flow_sid}/Executions/{execution_sid}")
    async def update_execution(flow_sid: str, execution_sid: str, request: Request) -> Any:
        execution = service.execution(flow_sid, execution_sid)
        status = first(await form_fields(request), "Status")
        if status != "ended":
            raise bad_request("Status must be 'ended'")
        row = service.ctx.db.one(
            "SELECT doc FROM studio_executions WHERE sid = ?", (execution_sid,)
        )
        assert row is not None
        doc = loads(row["doc"])
        doc["status"] = execution["status"] = "ended"
        doc["date_updated"] = execution["date_updated"] = iso(utcnow())
        service.ctx.db.execute(
            "UPDATE studio_executions SET doc = ? WHERE sid = ?", (dumps(doc), execution_sid)
        )
        return execution

    return router


def _webhooks_router(service: StudioService) -> APIRouter:
    router = APIRouter(tags=["webhooks"])

    @router.api_route("/v1/Accounts/{account_sid}/Flows/{flow_sid}", methods=["GET", "POST"])
    async def voice_handoff(
        account_sid: str,
        flow_sid: str,
        request: Request,
        trigger: Annotated[str | None, Query(alias="Trigger")] = None,
    ) -> Response:
        if not _FLOW_SID.match(flow_sid):
            raise not_found("Flow", flow_sid)
        if request.method == "POST":
            fields = await form_fields(request)
        else:
            fields = {k: [v] for k, v in request.query_params.items() if k != "Trigger"}
        handoff = service.record_voice_handoff(account_sid, flow_sid, trigger, fields)
        await service.ctx.bus.publish("studio.voice_handoff", {"handoff": handoff})
        twiml = HANDOFF_TWIML.format(message=escape(HANDOFF_MESSAGE))
        return Response(twiml, media_type="application/xml")

    return router


def _control_router(service: StudioService) -> APIRouter:
    router = APIRouter(prefix="/studio", tags=["control"])

    @router.get("/executions")
    async def executions() -> dict[str, Any]:
        """Every Flow execution (digital handoff), oldest first, with its parsed Parameters."""
        return {"executions": service.recorded_executions()}

    @router.get("/handoffs")
    async def handoffs() -> dict[str, Any]:
        """Every voice handoff (``<Connect action>`` to Studio), oldest first."""
        return {"handoffs": service.voice_handoffs()}

    return router
