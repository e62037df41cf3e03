"""The Conversation Orchestrator: its state and behaviour, one layer per concern
(configurations → reads → participants → conversations → communications → timeouts here)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from tac_sandbox.products.conversations._shared import (
    _TABLES,
    DEFAULT_TIMEOUTS,
    VOICE_TIMEOUTS,
    logger,
)
from tac_sandbox.products.conversations.communications import Communications


class Orchestrator(Communications):
    """The Conversation Orchestrator's state and behaviour, shared by its routes, the
    simulated customers and the control API."""

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = False
        self._timer = asyncio.get_running_loop().create_task(self._run_timeouts())

    async def stop(self) -> None:
        if self._timer is not None:
            # The flag, not only the cancellation: wait_for may swallow a cancel that races
            # with the wake-up event (Python < 3.12).
            self._stopping = True
            self.wake()
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None

    async def _run_timeouts(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            try:
                next_due = await self._sweep(time.time())
            except Exception:
                logger.exception("status timeout sweep failed")
                next_due = time.time() + 1.0
            delay = None if next_due is None else max(next_due - time.time(), 0.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _sweep(self, now: float) -> float | None:
        """Apply due INACTIVE/CLOSED transitions; return when the next one is due."""
        unit = self.ctx.settings.status_timeout_unit_seconds
        next_due: float | None = None
        rows = self.db.query(
            "SELECT id, configuration_id, status, channel, last_activity,"
            " instr(doc, '\"channelSettings\"') > 0 AS own_settings FROM conv_conversations"
            " WHERE status IN ('ACTIVE', 'INACTIVE')"
        )
        configurations: dict[str, dict[str, Any]] = {}
        shared: dict[tuple[str, str | None], dict[str, float]] = {}
        for row in rows:
            if row["own_settings"]:
                conversation = self.conversation(row["id"])
                timeouts = self._timeouts(conversation, row["channel"], configurations)
            else:
                slot = (row["configuration_id"], row["channel"])
                if slot not in shared:
                    stub = {"configurationId": row["configuration_id"]}
                    shared[slot] = self._timeouts(stub, row["channel"], configurations)
                timeouts = shared[slot]
            inactive_at = row["last_activity"] + timeouts["inactive"] * unit
            closed_at = row["last_activity"] + timeouts["closed"] * unit
            due = inactive_at if row["status"] == "ACTIVE" else closed_at
            if now < due:
                next_due = due if next_due is None else min(next_due, due)
                continue
            conversation = self.conversation(row["id"])
            if row["status"] == "ACTIVE":
                conversation = await self._update_conversation(conversation, {"status": "INACTIVE"})
            if now >= closed_at:
                await self._update_conversation(conversation, {"status": "CLOSED"})
            else:
                next_due = closed_at if next_due is None else min(next_due, closed_at)
        return next_due

    def _timeouts(
        self,
        conversation: dict[str, Any],
        channel: str | None,
        cache: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, float]:
        effective = self.effective_configuration(conversation, cache)
        settings = effective.get("channelSettings") or {}
        fallback = VOICE_TIMEOUTS if channel == "VOICE" else DEFAULT_TIMEOUTS
        given = (settings.get(channel or "", {}) or {}).get("statusTimeouts") or {}
        return {
            "inactive": float(given.get("inactive") or fallback["inactive"]),
            "closed": float(given.get("closed") or fallback["closed"]),
        }

    async def reset(self) -> None:
        await self.webhooks.reset()
        with self.db.transaction() as conn:
            for table in _TABLES:
                conn.execute(f"DELETE FROM {table}")
        self._idempotent.clear()
        self.ensure_default_configuration()
        self.changes.notify()
        self.wake()
