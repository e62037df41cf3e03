"""Conversation Intelligence v3 as seed 003 configures it: summaries when a conversation ends.

The sandbox's intelligence configuration (``identity.intelligence_configuration_id``) has two
rules with the "Summary" operator: one triggered when a conversation goes INACTIVE
(``inactive``, trigger ``CONVERSATION_INACTIVE``), one when it is CLOSED (``closed``,
``CONVERSATION_END``). Each rule runs in one mode:

- ``memory`` (default): the sandbox writes an extractive summary, and observations of what the
  customer said about themselves, into Memory for each CUSTOMER participant with a profile
  (source ``conversation-intelligence``), as Twilio does with "Enable Conversation Memory";
- ``webhook``: it POSTs the v3 rule-execution payload (signed with ``bodySHA256``) to a URL,
  by default ``{app_url}/ci-webhook``, and writes nothing itself;
- ``off``: nothing.

Control API (under ``/sandbox/intelligence``): ``GET /configuration``,
``PUT /rules/{inactive|closed}`` with ``{"mode": ..., "url"?: ...}``, ``GET /results``,
``GET /deliveries``. Read API: ``GET /intelligence/v3/OperatorResults``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from twilio.request_validator import RequestValidator

from tac_sandbox._context import SandboxContext
from tac_sandbox._db import dumps, loads
from tac_sandbox._errors import bad_request, not_found
from tac_sandbox._ids import ttid
from tac_sandbox.products import intelligence_admin
from tac_sandbox.products._common import (
    iso,
    items,
    obj,
    on_reset,
    page_body,
    page_bounds,
    utcnow,
)
from tac_sandbox.products._extract import Utterance, observations, summarize

logger = logging.getLogger("tac_sandbox.intelligence")

SOURCE = "conversation-intelligence"
TRIGGERS = {
    "inactive": ("INACTIVE", "CONVERSATION_INACTIVE"),
    "closed": ("CLOSED", "CONVERSATION_END"),
}
_SCHEMA = """
CREATE TABLE ci_configuration (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE ci_results (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX ci_results_conversation ON ci_results (conversation_id);
"""
Mode = Literal["memory", "webhook", "off"]


class RuleSetting(BaseModel):
    """How one rule delivers its result: into Memory, to a webhook URL, or not at all."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode
    url: str | None = Field(default=None, description="webhook mode: where to POST")


class IntelligenceService:
    """The configuration, the operator results, and webhook deliveries."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.deliveries: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    # configuration

    def configuration(self) -> dict[str, Any]:
        config_id = self.ctx.identity.intelligence_configuration_id
        row = self.ctx.db.one("SELECT doc FROM ci_configuration WHERE id = ?", (config_id,))
        if row is not None:
            doc: dict[str, Any] = loads(row["doc"])
            doc["operatorId"] = self.ctx.identity.intelligence_summary_operator_id
            return doc
        doc = {
            "id": config_id,
            "friendlyName": "sandbox-intelligence",
            "version": 1,
            "operatorId": self.ctx.identity.intelligence_summary_operator_id,
            "rules": [
                {
                    "id": ttid("intelligence_configurationrule"),
                    "trigger": name,
                    "on": on,
                    "mode": "memory",
                    "url": None,
                }
                for name, (_, on) in TRIGGERS.items()
            ],
        }
        self._save(doc)
        return doc

    def _save(self, doc: dict[str, Any]) -> None:
        self.ctx.db.execute(
            "INSERT INTO ci_configuration (id, doc) VALUES (?, ?)"
            " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            (doc["id"], dumps(doc)),
        )

    def set_rule(self, trigger: str, setting: RuleSetting) -> dict[str, Any]:
        if trigger not in TRIGGERS:
            raise not_found("Rule", trigger)
        url = setting.url
        if setting.mode == "webhook":
            url = url or self.ctx.settings.app_url.rstrip("/") + "/ci-webhook"
            if not url.startswith(("http://", "https://")):
                raise bad_request(f"url must be an http(s) URL, got {url!r}")
        elif url is not None:
            raise bad_request(f"url is only for mode 'webhook', not {setting.mode!r}")
        doc = self.configuration()
        for rule in doc["rules"]:
            if rule["trigger"] == trigger:
                rule["mode"], rule["url"] = setting.mode, url
                found: dict[str, Any] = rule
        doc["version"] += 1
        self._save(doc)
        return found

    # running the rules

    async def on_status_changed(self, payload: dict[str, Any]) -> None:
        status = str(payload.get("status") or "").upper()
        if status == str(payload.get("previous_status") or "").upper():
            return
        trigger = next((name for name, (s, _) in TRIGGERS.items() if s == status), None)
        conversation = obj(payload.get("conversation"))
        if trigger is None or not self._applies_to(conversation):
            return
        config = self.configuration()
        rule = next(r for r in config["rules"] if r["trigger"] == trigger)
        if rule["mode"] == "off":
            return
        result = self.operator_result(config, rule, payload)
        if result is None:
            return
        self.ctx.db.execute(
            "INSERT INTO ci_results (id, conversation_id, doc) VALUES (?, ?, ?)",
            (result["id"], result["conversationId"], dumps(result)),
        )
        if rule["mode"] == "memory":
            await self._write_memory(result, payload)
        else:
            envelope = self.envelope(config, rule, result)
            task = asyncio.create_task(self._deliver(rule["url"], envelope))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _applies_to(self, conversation: dict[str, Any]) -> bool:
        configured = obj(conversation.get("configuration")).get("intelligenceConfigurationIds")
        if not configured:
            return True
        return self.ctx.identity.intelligence_configuration_id in configured

    def operator_result(
        self, config: dict[str, Any], rule: dict[str, Any], payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        conversation = obj(payload.get("conversation"))
        conversation_id = conversation.get("id")
        if not isinstance(conversation_id, str):
            return None
        participants = items(payload.get("participants"))
        kinds = {str(p.get("id")): str(p.get("type") or "UNKNOWN") for p in participants}
        communications = items(payload.get("communications"))
        utterances = []
        channels: list[str] = []
        for communication in communications:
            author = obj(communication.get("author"))
            text = obj(communication.get("content")).get("text")
            channel = author.get("channel")
            if isinstance(channel, str) and channel not in channels:
                channels.append(channel)
            if isinstance(text, str) and text.strip():
                speaker = kinds.get(str(author.get("participantId")), "UNKNOWN")
                utterances.append(Utterance(speaker, text))
        summary = summarize(utterances, channels[0] if len(channels) == 1 else None)
        if summary is None:
            return None
        now = iso(utcnow())
        store_id = self._store_id(payload)
        customers = [p for p in participants if p.get("type") == "CUSTOMER" and p.get("profileId")]
        details: dict[str, Any] = {
            "trigger": {"on": rule["on"], "timestamp": now},
            "communications": {
                "first": communications[0].get("id") if communications else None,
                "last": communications[-1].get("id") if communications else None,
            },
            "channels": channels,
            "participants": [
                {
                    k: v
                    for k, v in {
                        "id": p.get("id"),
                        "profileId": p.get("profileId"),
                        "type": p.get("type"),
                    }.items()
                    if v is not None
                }
                for p in participants
            ],
        }
        if customers:
            details["resolvedContext"] = {
                "memory": {"profileId": customers[0]["profileId"], "memoryStoreId": store_id}
            }
        texts = "".join(u.text for u in utterances)
        return {
            "id": ttid("intelligence_operatorresult"),
            "accountId": self.ctx.identity.account_sid,
            "outputFormat": "JSON",
            "intelligenceConfiguration": {
                "id": config["id"],
                "ruleId": rule["id"],
                "version": config["version"],
            },
            "conversationId": conversation_id,
            "operator": {"id": config["operatorId"], "version": 1, "parameters": {}},
            "dateCreated": now,
            "referenceIds": [c.get("id") for c in communications if c.get("id")],
            "executionDetails": details,
            "metadata": {
                "system": {
                    "resolvedModel": "sandbox-extractive-1",
                    "latencyMs": 0,
                    "inputCharacters": len(texts),
                    "outputCharacters": len(summary),
                    "inputTruncated": False,
                }
            },
            "result": {"summaries": [{"summary": summary}]},
            "_observations": observations(utterances),
        }

    def _store_id(self, payload: dict[str, Any]) -> str:
        conversation = obj(payload.get("conversation"))
        store = payload.get("memoryStoreId") or obj(conversation.get("configuration")).get(
            "memoryStoreId"
        )
        return str(store or self.ctx.identity.memory_store_id)

    def envelope(
        self, config: dict[str, Any], rule: dict[str, Any], result: dict[str, Any]
    ) -> dict[str, Any]:
        """The v3 rule-execution webhook body for one operator result."""
        memory = (result["executionDetails"].get("resolvedContext") or {}).get("memory") or {}
        return {
            "accountId": result["accountId"],
            "conversationId": result["conversationId"],
            "memoryStoreId": memory.get("memoryStoreId", self.ctx.identity.memory_store_id),
            "intelligenceConfiguration": {
                "id": config["id"],
                "ruleId": rule["id"],
                "version": config["version"],
            },
            "operatorResults": [public_result(result)],
        }

    async def _write_memory(self, result: dict[str, Any], payload: dict[str, Any]) -> None:
        memory = self.ctx.products.memory
        if memory is None:
            logger.warning("Conversation Intelligence: no Memory product to write into")
            return
        store_id = self._store_id(payload)
        summary = result["result"]["summaries"][0]["summary"]
        for participant in result["executionDetails"]["participants"]:
            profile_id = participant.get("profileId")
            if participant.get("type") != "CUSTOMER" or not profile_id:
                continue
            await memory.add_summary(
                store_id, profile_id, result["conversationId"], summary, SOURCE
            )
            await memory.add_observations(
                store_id, profile_id, result["_observations"], result["conversationId"], SOURCE
            )

    async def _deliver(self, url: str, envelope: dict[str, Any]) -> None:
        body = json.dumps(envelope, separators=(",", ":")).encode()
        digest = hashlib.sha256(body).hexdigest()
        signed_url = f"{url}{'&' if '?' in url else '?'}bodySHA256={digest}"
        validator = RequestValidator(self.ctx.identity.auth_token)
        headers = {
            "Content-Type": "application/json",
            "X-Twilio-Signature": validator.compute_signature(signed_url, {}),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        record: dict[str, Any] = {
            "url": signed_url,
            "conversationId": envelope["conversationId"],
            "payload": envelope,
            "at": iso(utcnow()),
        }
        try:
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=10.0)
            response = await self._client.post(signed_url, content=body, headers=headers)
            record["status"] = response.status_code
        except httpx.HTTPError as exc:
            record["status"] = None
            record["error"] = f"{type(exc).__name__}: {exc}"
            logger.warning("CI webhook to %s failed: %s", url, exc)
        self.deliveries.append(record)

    async def reset(self) -> None:
        """Forget operator results and deliveries; keep the configuration and its rules."""
        await self.drain()
        self.ctx.db.execute("DELETE FROM ci_results")
        self.deliveries.clear()

    async def drain(self) -> None:
        """Wait for webhook deliveries in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def results(
        self, conversation_id: str | None, operator_id: str | None = None
    ) -> list[dict[str, Any]]:
        if conversation_id:
            rows = self.ctx.db.query(
                "SELECT doc FROM ci_results WHERE conversation_id = ? ORDER BY seq",
                (conversation_id,),
            )
        else:
            rows = self.ctx.db.query("SELECT doc FROM ci_results ORDER BY seq")
        found = [public_result(loads(row["doc"])) for row in rows]
        return [r for r in found if operator_id is None or r["operator"]["id"] == operator_id]


def public_result(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if not k.startswith("_")}


def install(ctx: SandboxContext) -> None:
    """Run Conversation Intelligence on ``conversation.status_changed``; add its APIs."""
    ctx.db.migrate("intelligence-1", _SCHEMA)
    service = IntelligenceService(ctx)
    service.configuration()
    ctx.bus.subscribe("conversation.status_changed", service.on_status_changed)
    ctx.products.intelligence = service
    ctx.on_shutdown(service.close)
    on_reset(ctx, service.reset)
    ctx.add_product("intelligence", _router(service))
    ctx.add_product("intelligence", intelligence_admin.router(service))
    ctx.add_control(_control_router(service))


def _router(service: IntelligenceService) -> APIRouter:
    router = APIRouter(tags=["intelligence"])

    @router.get("/v3/OperatorResults")
    async def list_results(
        conversation_id: Annotated[str | None, Query(alias="conversationId")] = None,
        configuration_id: Annotated[str | None, Query(alias="intelligenceConfigurationId")] = None,
        operator_id: Annotated[str | None, Query(alias="operatorId")] = None,
        page_size: Annotated[int | None, Query(alias="pageSize")] = None,
        page_token: Annotated[str | None, Query(alias="pageToken")] = None,
    ) -> dict[str, Any]:
        offset, size = page_bounds(page_size, page_token)
        results = service.results(conversation_id, operator_id)
        if configuration_id:
            results = [
                r for r in results if r["intelligenceConfiguration"]["id"] == configuration_id
            ]
        return page_body(
            "operatorResults", results[offset : offset + size], offset, size, len(results)
        )

    @router.get("/v3/OperatorResults/{result_id}")
    async def get_result(result_id: str) -> dict[str, Any]:
        row = service.ctx.db.one("SELECT doc FROM ci_results WHERE id = ?", (result_id,))
        if row is None:
            raise not_found("OperatorResult", result_id)
        return public_result(loads(row["doc"]))

    return router


def _control_router(service: IntelligenceService) -> APIRouter:
    router = APIRouter(prefix="/intelligence", tags=["control"])

    @router.get("/configuration")
    async def configuration() -> dict[str, Any]:
        """The intelligence configuration and its two rules."""
        return service.configuration()

    @router.put("/rules/{trigger}")
    async def set_rule(trigger: str, setting: RuleSetting) -> dict[str, Any]:
        """Set one rule (``inactive`` or ``closed``) to ``memory``, ``webhook`` or ``off``."""
        return service.set_rule(trigger, setting)

    @router.get("/results")
    async def results(
        conversation_id: Annotated[str | None, Query(alias="conversationId")] = None,
    ) -> dict[str, Any]:
        return {"operatorResults": service.results(conversation_id)}

    @router.get("/deliveries")
    async def deliveries() -> dict[str, Any]:
        """CI webhooks sent, oldest first, with the status the app answered."""
        await service.drain()
        return {"deliveries": service.deliveries}

    return router
