"""The Flex view: each human handoff as the Flex agent who accepts the task would see it.

A handoff reaches the sandbox in one of two ways, both recorded by the Studio product: a
Studio Flow execution (digital channels; ``Parameters.HandoffData``) or the voice handoff
webhook (the ``<Connect action>`` ConversationRelay calls after ``end``; ``HandoffData``). For
each, the view assembles, when asked (so that a summary written after the handoff shows):

- the customer (address, Memory profile id and traits) and the channel;
- the app's attributes and the LLM's reason (``HandoffData.attributes``);
- the conversation's history (the Orchestrator's communications, oldest first);
- the latest conversation summary in Memory (what Conversation Intelligence wrote).

Control API: ``GET /sandbox/flex/tasks`` (``?conversationId=`` to filter), oldest first.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Annotated, Any

from fastapi import APIRouter, Query

from tac_sandbox._context import SandboxContext
from tac_sandbox._db import loads

_AGENT_TYPES = ("AI_AGENT", "AGENT", "HUMAN_AGENT")


def install(ctx: SandboxContext) -> None:
    """Add ``GET /sandbox/flex/tasks``."""
    ctx.add_control(_router(FlexView(ctx)))


class FlexView:
    """Builds Flex tasks from what the Studio, Orchestrator and Memory products recorded."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    def tasks(self, conversation_id: str | None = None) -> list[dict[str, Any]]:
        found = [self._digital_task(row) for row in self._executions()]
        found += [self._voice_task(row) for row in self._voice_handoffs()]
        found.sort(key=lambda task: (task["createdAt"] or "", task["sid"]))
        if conversation_id is not None:
            found = [task for task in found if task["conversationId"] == conversation_id]
        return found

    # -- sources -----------------------------------------------------------------------------

    def _rows(self, sql: str) -> list[sqlite3.Row]:
        try:
            return self.ctx.db.query(sql)
        except sqlite3.OperationalError:  # the product is not installed in this sandbox
            return []

    def _executions(self) -> list[dict[str, Any]]:
        records = []
        for row in self._rows("SELECT doc, parameters FROM studio_executions ORDER BY seq"):
            doc = loads(row["doc"])
            record = doc.pop("_record", {}) or {}
            parameters = _json_object(row["parameters"])
            records.append({"execution": doc, "from": record.get("from"), "parameters": parameters})
        return records

    def _voice_handoffs(self) -> list[dict[str, Any]]:
        # A session that ended without HandoffData (a failed call, a hang-up) hands nothing off.
        handoffs = [
            loads(row["doc"]) for row in self._rows("SELECT doc FROM studio_voice_handoffs")
        ]
        return [h for h in handoffs if h.get("handoffData") is not None]

    # -- tasks -------------------------------------------------------------------------------

    def _digital_task(self, record: dict[str, Any]) -> dict[str, Any]:
        execution = record["execution"]
        handoff = _json_object((record["parameters"] or {}).get("HandoffData"))
        to = execution.get("contact_channel_address")
        return self._task(
            source="studio_execution",
            source_id=str(execution.get("sid")),
            created_at=execution.get("date_created"),
            handoff=handoff,
            customer_address=to,
            channel_hint=_channel_of(to),
            agent_address=record.get("from"),
        )

    def _voice_task(self, record: dict[str, Any]) -> dict[str, Any]:
        params = record.get("params") or {}
        handoff = _json_object(record.get("handoffData"))
        outbound = str(params.get("Direction", "")).startswith("outbound")
        caller = params.get("To") if outbound else params.get("From")
        app = params.get("From") if outbound else params.get("To")
        call_sid = record.get("callSid") or ""
        return self._task(
            source="voice_handoff",
            source_id=f"{call_sid}:{record.get('at')}",
            created_at=record.get("at"),
            handoff=handoff,
            customer_address=caller if isinstance(caller, str) else None,
            channel_hint="voice",
            agent_address=app if isinstance(app, str) else None,
            call_sid=call_sid or None,
        )

    def _task(
        self,
        *,
        source: str,
        source_id: str,
        created_at: str | None,
        handoff: dict[str, Any],
        customer_address: str | None,
        channel_hint: str,
        agent_address: str | None,
        call_sid: str | None = None,
    ) -> dict[str, Any]:
        conversation_id = handoff.get("conversationId")
        conversation_id = conversation_id if isinstance(conversation_id, str) else None
        store_id = handoff.get("storeId") if isinstance(handoff.get("storeId"), str) else None
        profile_id = handoff.get("profileId") or None
        participants = self._participants(conversation_id)
        customer = next((p for p in participants if p.get("type") == "CUSTOMER"), None)
        if customer is not None:
            profile_id = profile_id or customer.get("profileId")
            if customer_address is None:
                customer_address = _address(customer, channel_hint)
        attributes = handoff.get("attributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        digest = hashlib.sha256(f"{source}:{source_id}".encode()).hexdigest()[:32]
        return {
            "sid": f"WT{digest}",
            "source": source,
            "createdAt": created_at,
            "channel": channel_hint,
            "callSid": call_sid,
            "conversationId": conversation_id,
            "customer": {
                "address": customer_address,
                "profileId": profile_id,
                "traits": self._traits(store_id, profile_id),
            },
            "agentAddress": agent_address,
            "attributes": attributes,
            "reason": attributes.get("reason"),
            "handoffData": handoff,
            "history": self._history(conversation_id, participants),
            "summary": self._summary(store_id, conversation_id, profile_id),
        }

    # -- context -----------------------------------------------------------------------------

    def _participants(self, conversation_id: str | None) -> list[dict[str, Any]]:
        orchestrator = self.ctx.products.conversations
        if conversation_id is None or orchestrator is None:
            return []
        try:
            found: list[dict[str, Any]] = orchestrator.participants(conversation_id)
        except Exception:
            return []
        return found

    def _history(
        self, conversation_id: str | None, participants: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        orchestrator = self.ctx.products.conversations
        if conversation_id is None or orchestrator is None:
            return []
        try:
            communications: list[dict[str, Any]] = orchestrator.communications(conversation_id)
        except Exception:
            return []
        kinds = {p.get("id"): p.get("type") for p in participants}
        history = []
        for communication in communications:
            author = communication.get("author") or {}
            content = communication.get("content") or {}
            kind = kinds.get(author.get("participantId"))
            role = "agent" if kind in _AGENT_TYPES else "customer" if kind else "unknown"
            history.append(
                {
                    "role": role,
                    "address": author.get("address"),
                    "channel": str(author.get("channel") or "").lower() or None,
                    "text": content.get("text") or _transcript(content),
                    "createdAt": communication.get("createdAt"),
                }
            )
        return history

    def _summary(
        self, store_id: str | None, conversation_id: str | None, profile_id: str | None
    ) -> dict[str, Any] | None:
        try:
            row = None
            if conversation_id is not None:
                row = self.ctx.db.one(
                    "SELECT * FROM mem_summaries WHERE conversation_id = ?"
                    " ORDER BY occurred_at DESC, seq DESC LIMIT 1",
                    (conversation_id,),
                )
            if row is None and profile_id:
                row = self.ctx.db.one(
                    "SELECT * FROM mem_summaries WHERE profile_id = ?"
                    " AND (? IS NULL OR store_id = ?) ORDER BY occurred_at DESC, seq DESC LIMIT 1",
                    (profile_id, store_id, store_id),
                )
        except sqlite3.OperationalError:
            return None
        if row is None:
            return None
        return {
            "id": row["id"],
            "content": row["content"],
            "source": row["source"],
            "conversationId": row["conversation_id"],
            "occurredAt": row["occurred_at"],
        }

    def _traits(self, store_id: str | None, profile_id: str | None) -> dict[str, Any]:
        if not profile_id:
            return {}
        try:
            row = self.ctx.db.one(
                "SELECT traits, merged_into FROM mem_profiles WHERE id = ?"
                " AND (? IS NULL OR store_id = ?)",
                (profile_id, store_id, store_id),
            )
            if row is not None and row["merged_into"]:
                row = self.ctx.db.one(
                    "SELECT traits, merged_into FROM mem_profiles WHERE id = ?",
                    (row["merged_into"],),
                )
        except sqlite3.OperationalError:
            return {}
        traits = loads(row["traits"]) if row is not None else None
        return traits if isinstance(traits, dict) else {}


def _router(view: FlexView) -> APIRouter:
    router = APIRouter(prefix="/flex", tags=["control"])

    @router.get("/tasks")
    async def tasks(
        conversation_id: Annotated[str | None, Query(alias="conversationId")] = None,
    ) -> dict[str, Any]:
        """Every handoff as a Flex task (customer, channel, attributes, history, summary)."""
        return {"tasks": view.tasks(conversation_id)}

    return router


def _json_object(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _channel_of(address: Any) -> str:
    text = str(address or "")
    if text.startswith("whatsapp:"):
        return "whatsapp"
    if text.startswith("rcs:"):
        return "rcs"
    if text.startswith("+"):
        return "sms"
    return "chat"


def _address(participant: dict[str, Any], channel: str) -> str | None:
    addresses = participant.get("addresses") or []
    for entry in addresses:
        if isinstance(entry, dict) and str(entry.get("channel", "")).lower() == channel:
            return str(entry.get("address"))
    for entry in addresses:
        if isinstance(entry, dict) and entry.get("address"):
            return str(entry["address"])
    return None


def _transcript(content: dict[str, Any]) -> str | None:
    transcription = content.get("transcription")
    if isinstance(transcription, dict):
        words = transcription.get("words") or []
        text = " ".join(str(w.get("text", "")) for w in words if isinstance(w, dict)).strip()
        return text or None
    return None
