"""Configurations, their operations, and what a conversation inherits from its configuration."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from tac_sandbox._context import SandboxContext
from tac_sandbox._db import loads
from tac_sandbox._errors import TwilioError, bad_request, not_found
from tac_sandbox._ids import ttid
from tac_sandbox._notify import Changes
from tac_sandbox._time import iso
from tac_sandbox._webhooks import WebhookDispatcher
from tac_sandbox.products._orchestrator_models import (
    ConfigurationIn,
)
from tac_sandbox.products.conversations._shared import (
    _DDL,
    _DDL_2,
    DEFAULT_TIMEOUTS,
    MESSAGING_CHANNELS,
    PRODUCT,
    VOICE_TIMEOUTS,
    _config_defaults,
    _dumps,
)


class Configurations:
    """Configurations, their operations, and what a conversation inherits from its configuration."""

    def __init__(self, ctx: SandboxContext, webhooks: WebhookDispatcher) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.webhooks = webhooks
        self.changes = Changes()
        self._wake: asyncio.Event | None = None
        self._timer: asyncio.Task[None] | None = None
        self._stopping = False
        self._idempotent: dict[tuple[str, str], tuple[int, dict[str, Any], dict[str, str]]] = {}
        self.db.migrate("conversations-1", _DDL)
        self.db.migrate("conversations-2", _DDL_2)

    def default_configuration(self) -> dict[str, Any]:
        now = iso(time.time())
        settings: dict[str, Any] = {
            channel: {"statusTimeouts": dict(DEFAULT_TIMEOUTS)} for channel in MESSAGING_CHANNELS
        }
        settings["VOICE"] = {"statusTimeouts": dict(VOICE_TIMEOUTS)}
        return {
            "id": self.ctx.identity.conversation_configuration_id,
            "displayName": "opentac sandbox",
            "description": "Default configuration of the opentac sandbox",
            "conversationGroupingType": "GROUP_BY_PARTICIPANT_ADDRESSES_AND_CHANNEL_TYPE",
            "memoryStoreId": self.ctx.identity.memory_store_id,
            "channelSettings": settings,
            "statusCallbacks": [
                {"url": self.ctx.settings.app_url.rstrip("/") + "/webhook", "method": "POST"}
            ],
            "intelligenceConfigurationIds": [self.ctx.identity.intelligence_configuration_id],
            "memoryExtractionEnabled": False,
            "createdAt": now,
            "updatedAt": now,
            "version": 1,
        }

    def ensure_default_configuration(self) -> None:
        """Create the default configuration, or point its callbacks at the current app URL."""
        default = self.default_configuration()
        row = self.db.one("SELECT doc FROM conv_configurations WHERE id = ?", (default["id"],))
        if row is None:
            self._save_configuration(default, insert=True)
            return
        current: dict[str, Any] = loads(row["doc"])
        if current.get("statusCallbacks") != default["statusCallbacks"]:
            current["statusCallbacks"] = default["statusCallbacks"]
            self._save_configuration(current)

    def _save_configuration(self, doc: dict[str, Any], *, insert: bool = False) -> None:
        if insert:
            self.db.execute(
                "INSERT INTO conv_configurations (id, doc) VALUES (?, ?)", (doc["id"], _dumps(doc))
            )
        else:
            self.db.execute(
                "UPDATE conv_configurations SET doc = ? WHERE id = ?", (_dumps(doc), doc["id"])
            )

    def configuration(self, configuration_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT doc FROM conv_configurations WHERE id = ?", (configuration_id,))
        if row is None:
            raise not_found("Configuration", configuration_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    def configurations(self, memory_store_id: str | None = None) -> list[dict[str, Any]]:
        docs = [
            loads(r["doc"])
            for r in self.db.query("SELECT doc FROM conv_configurations ORDER BY rowid")
        ]
        return [
            d for d in docs if memory_store_id is None or d.get("memoryStoreId") == memory_store_id
        ]

    def write_configuration(
        self, configuration_id: str | None, body: ConfigurationIn, *, mode: str
    ) -> dict[str, Any]:
        """Create (``mode="create"``), replace (``"put"``) or merge (``"patch"``)."""
        given = body.given()
        now = iso(time.time())
        if mode in ("create", "put") and not given.get("displayName"):
            raise bad_request("Invalid request: displayName: Field required")
        if mode == "create":
            doc: dict[str, Any] = {"id": ttid("conv_configuration"), **_config_defaults()}
            doc.update(given)
            doc.update({"createdAt": now, "updatedAt": now, "version": 1})
            self._save_configuration(doc, insert=True)
            return doc
        assert configuration_id is not None
        current = self.configuration(configuration_id)
        if mode == "put":
            doc = {"id": configuration_id, **_config_defaults(), **given}
        else:
            doc = {**current, **given}
        doc.update(
            {
                "createdAt": current["createdAt"],
                "updatedAt": now,
                "version": int(current.get("version", 1)) + 1,
            }
        )
        self._save_configuration(doc)
        return doc

    def delete_configuration(self, configuration_id: str) -> None:
        self.configuration(configuration_id)
        in_use = self.db.one(
            "SELECT id FROM conv_conversations WHERE configuration_id = ? AND status != 'CLOSED'",
            (configuration_id,),
        )
        if in_use is not None:
            raise TwilioError(
                409,
                f"Configuration {configuration_id} is used by conversation {in_use['id']}",
                headers={"X-Conflicting-Resource-Id": in_use["id"]},
            )
        self.db.execute("DELETE FROM conv_configurations WHERE id = ?", (configuration_id,))

    def operation(self, request: Request, related: dict[str, str]) -> tuple[dict[str, Any], str]:
        """Record a long-running operation that already completed; return 202 body + id."""
        op_id = ttid("conv_operation")
        status_url = (
            f"{str(request.base_url).rstrip('/')}/{PRODUCT}/v2/ControlPlane/Operations/{op_id}"
        )
        now = iso(time.time())
        doc = {
            "operationId": op_id,
            "status": "COMPLETED",
            "createdAt": now,
            "completedAt": now,
            "statusUrl": status_url,
            "related": related,
        }
        self.db.execute("INSERT INTO conv_operations (id, doc) VALUES (?, ?)", (op_id, _dumps(doc)))
        return {"statusUrl": status_url, "related": related}, op_id

    def get_operation(self, op_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT doc FROM conv_operations WHERE id = ?", (op_id,))
        if row is None:
            raise not_found("Operation", op_id)
        doc: dict[str, Any] = loads(row["doc"])
        return doc

    def effective_configuration(
        self, conversation: dict[str, Any], cache: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The configuration's settings with the conversation's own overrides on top."""
        config_id = conversation["configurationId"]
        base = cache.get(config_id) if cache is not None else None
        if base is None:
            try:
                base = self.configuration(config_id)
            except TwilioError:
                base = {}
            if cache is not None:
                cache[config_id] = base
        own: dict[str, Any] = conversation.get("configuration") or {}
        merged = {**base, **{k: v for k, v in own.items() if k != "channelSettings"}}
        settings = dict(base.get("channelSettings") or {})
        settings.update(own.get("channelSettings") or {})
        merged["channelSettings"] = settings
        return merged

    def status_callbacks(self, conversation: dict[str, Any]) -> list[dict[str, str]]:
        callbacks: list[dict[str, str]] = (
            self.effective_configuration(conversation).get("statusCallbacks") or []
        )
        return callbacks

    def replay(self, key: str | None, scope: str) -> JSONResponse | None:
        if not key:
            return None
        hit = self._idempotent.get((scope, key))
        if hit is None:
            return None
        status, body, headers = hit
        return JSONResponse(body, status_code=status, headers=headers)

    def remember(
        self,
        key: str | None,
        scope: str,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str],
    ) -> JSONResponse:
        if key:
            self._idempotent[(scope, key)] = (status, body, headers)
        return JSONResponse(body, status_code=status, headers=headers)
