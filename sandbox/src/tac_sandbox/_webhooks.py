"""Webhooks as Twilio sends them: signed JSON, an idempotency token, retries with backoff.

Each event is POSTed as ``{"eventType", "timestamp", "data"}`` to every status callback, with
``X-Twilio-Signature`` computed over ``url?bodySHA256=<hex>`` (no parameters) with the account's
auth token and ``I-Twilio-Idempotency-Token`` that stays the same on every redelivery. Events of
one conversation are delivered one after another, in order; a delivery never blocks the API
request that caused it. Every attempt is recorded for inspection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from twilio.request_validator import RequestValidator

from tac_sandbox._http import HttpSender
from tac_sandbox._notify import Changes
from tac_sandbox._time import iso_ms

logger = logging.getLogger("tac_sandbox.webhooks")

SIGNATURE_HEADER = "X-Twilio-Signature"
TOKEN_HEADER = "I-Twilio-Idempotency-Token"


class DeliveryPolicy(BaseModel):
    """How hard the sandbox tries to deliver one webhook."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=5, ge=1, le=20, description="Tries before giving up")
    base_delay_seconds: float = Field(
        default=0.5, ge=0, le=3600, description="Wait before the first retry; doubles each time"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=600, description="Per attempt")


class WebhookFaults(BaseModel):
    """Faults injected into webhook delivery."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0, description="Added before every attempt")
    drop_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of events lost: never sent, never retried"
    )
    duplicate_rate: float = Field(
        default=0.0, ge=0, le=1, description="Share of delivered events sent a second time"
    )


@dataclass(frozen=True)
class Event:
    """One webhook event, serialised once so every (re)delivery sends the same bytes."""

    id: str
    event_type: str
    conversation_id: str
    token: str
    body: bytes


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivery attempt of one event to one URL."""

    seq: int
    event_id: str
    event_type: str
    conversation_id: str
    url: str
    token: str
    attempt: int
    outcome: str  # delivered | failed (will retry) | gave_up | dropped
    status_code: int | None
    error: str | None
    latency_ms: float
    duplicate: bool
    at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "conversationId": self.conversation_id,
            "url": self.url,
            "token": self.token,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "statusCode": self.status_code,
            "error": self.error,
            "latencyMs": round(self.latency_ms, 3),
            "duplicate": self.duplicate,
            "at": iso_ms(self.at),
        }


def signed_url(url: str, body: bytes) -> str:
    """The callback URL with ``bodySHA256`` appended, as Twilio signs JSON webhooks."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{url}{'&' if '?' in url else '?'}bodySHA256={digest}"


@dataclass
class _Queue:
    items: deque[tuple[Event, list[dict[str, str]]]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class WebhookDispatcher:
    """Queues, signs, delivers, retries and records webhooks."""

    def __init__(self, auth_token: str, policy: DeliveryPolicy, seed: int | None = None) -> None:
        self.policy = policy
        self.faults = WebhookFaults()
        self.changes = Changes()
        self._validator = RequestValidator(auth_token)
        self._random = random.Random(seed)
        self._queues: dict[str, _Queue] = {}
        self._records: deque[DeliveryRecord] = deque(maxlen=20_000)
        self._seq = 0
        self._http: HttpSender | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def send(
        self,
        key: str,
        callbacks: list[dict[str, str]],
        event_type: str,
        data: dict[str, Any],
        *,
        body: dict[str, Any] | None = None,
    ) -> Event | None:
        """Queue ``event_type`` for every callback; return at once (``None`` if no callback).

        The JSON sent is ``{"eventType", "timestamp", "data"}`` (Conversation Orchestrator),
        or ``body`` as given (other products' webhook shapes). ``key`` orders deliveries: events
        with the same key go out one after another.
        """
        if not callbacks:
            return None
        envelope = body or {"eventType": event_type, "timestamp": iso_ms(time.time()), "data": data}
        raw = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
        event = Event(uuid.uuid4().hex, event_type, key, str(uuid.uuid4()), raw)
        queue = self._queues.setdefault(key, _Queue())
        queue.items.append((event, [dict(c) for c in callbacks]))
        if queue.task is None:
            self._idle.clear()
            queue.task = asyncio.get_running_loop().create_task(self._drain(key))
        return event

    async def _drain(self, conversation_id: str) -> None:
        queue = self._queues[conversation_id]
        try:
            while queue.items:
                event, callbacks = queue.items.popleft()
                for callback in callbacks:
                    await self._deliver(event, callback)
        finally:
            queue.task = None
            if not queue.items:
                self._queues.pop(conversation_id, None)
            if not self._queues:
                self._idle.set()

    async def _deliver(self, event: Event, callback: dict[str, str]) -> None:
        url = callback["url"]
        if self.faults.drop_rate and self._random.random() < self.faults.drop_rate:
            self._record(event, url, 1, "dropped", None, "dropped by fault injection", 0.0)
            return
        attempts = self.policy.attempts
        for attempt in range(1, attempts + 1):
            ok = await self._attempt(event, callback, attempt, last=attempt == attempts)
            if ok:
                if (
                    self.faults.duplicate_rate
                    and self._random.random() < self.faults.duplicate_rate
                ):
                    await self._attempt(event, callback, attempt, last=True, duplicate=True)
                return
            if attempt < attempts:
                await asyncio.sleep(self.policy.base_delay_seconds * 2 ** (attempt - 1))

    async def _attempt(
        self,
        event: Event,
        callback: dict[str, str],
        attempt: int,
        *,
        last: bool,
        duplicate: bool = False,
    ) -> bool:
        url = callback["url"]
        method = callback.get("method", "POST").upper()
        started = time.perf_counter()  # injected latency counts: it stands for the network
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        target = signed_url(url, event.body) if method == "POST" else url
        headers = {
            SIGNATURE_HEADER: self._validator.compute_signature(target, {}),
            TOKEN_HEADER: event.token,
            "Content-Type": "application/json",
            "User-Agent": "TwilioProxy/1.1 (opentac sandbox)",
        }
        content = event.body if method == "POST" else None
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client().request(
                method,
                target,
                content=content,
                headers=headers,
                timeout=self.policy.timeout_seconds,
            )
            status = response.status_code
        except httpx.TimeoutException:
            error = f"timed out after {self.policy.timeout_seconds}s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = (time.perf_counter() - started) * 1000
        ok = status is not None and 200 <= status < 300
        outcome = "delivered" if ok else ("gave_up" if last else "failed")
        self._record(event, url, attempt, outcome, status, error, latency, duplicate)
        if outcome == "gave_up":
            logger.warning("gave up delivering %s to %s", event.event_type, url)
        return ok

    def _record(
        self,
        event: Event,
        url: str,
        attempt: int,
        outcome: str,
        status: int | None,
        error: str | None,
        latency_ms: float,
        duplicate: bool = False,
    ) -> None:
        self._seq += 1
        self._records.append(
            DeliveryRecord(
                self._seq,
                event.id,
                event.event_type,
                event.conversation_id,
                url,
                event.token,
                attempt,
                outcome,
                status,
                error,
                latency_ms,
                duplicate,
                time.time(),
            )
        )
        self.changes.notify()

    def _client(self) -> HttpSender:
        if self._http is None:
            self._http = HttpSender(max_connections=100)
        return self._http

    def deliveries(
        self,
        *,
        event_type: str | None = None,
        conversation_id: str | None = None,
        outcome: str | None = None,
    ) -> list[DeliveryRecord]:
        """Recorded attempts, oldest first, optionally filtered."""
        return [
            r
            for r in self._records
            if (event_type is None or r.event_type == event_type)
            and (conversation_id is None or r.conversation_id == conversation_id)
            and (outcome is None or r.outcome == outcome)
        ]

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or being delivered; ``False`` on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def clear_records(self) -> None:
        self._records.clear()
        self.changes.notify()

    async def reset(self) -> None:
        """Cancel pending deliveries and forget every record and fault."""
        tasks = [q.task for q in self._queues.values() if q.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._queues.clear()
        self._idle.set()
        self._records.clear()
        self.faults = WebhookFaults()
        self.changes.notify()

    async def close(self) -> None:
        await self.reset()
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def control_router(dispatcher: WebhookDispatcher) -> APIRouter:
    """``/sandbox/webhooks/...``: deliveries, faults and the retry policy."""
    router = APIRouter(prefix="/webhooks", tags=["control"])

    @router.get("/deliveries")
    async def deliveries(
        eventType: str | None = None,
        conversationId: str | None = None,
        outcome: str | None = None,
        min: int = 0,
        wait: float = 0.0,
    ) -> dict[str, Any]:
        """Delivery attempts, oldest first; ``wait`` seconds for at least ``min`` of them."""

        def matching() -> list[DeliveryRecord]:
            return dispatcher.deliveries(
                event_type=eventType, conversation_id=conversationId, outcome=outcome
            )

        if min > 0 and wait > 0:
            await dispatcher.changes.wait_until(lambda: len(matching()) >= min, _cap(wait))
        return {"deliveries": [r.to_json() for r in matching()]}

    @router.delete("/deliveries", status_code=204)
    async def clear_deliveries() -> None:
        dispatcher.clear_records()

    @router.get("/idle")
    async def idle(wait: float = 5.0) -> dict[str, Any]:
        """Wait until every queued webhook was delivered or given up."""
        return {"idle": await dispatcher.wait_idle(_cap(wait))}

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        return dispatcher.faults.model_dump()

    @router.put("/faults")
    async def set_faults(faults: WebhookFaults) -> dict[str, Any]:
        dispatcher.faults = faults
        return faults.model_dump()

    @router.delete("/faults", status_code=204)
    async def clear_faults() -> None:
        dispatcher.faults = WebhookFaults()

    @router.get("/policy")
    async def get_policy() -> dict[str, Any]:
        return dispatcher.policy.model_dump()

    @router.put("/policy")
    async def set_policy(policy: DeliveryPolicy) -> dict[str, Any]:
        dispatcher.policy = policy
        return policy.model_dump()

    return router


def _cap(wait: float) -> float:
    return max(0.0, min(wait, 60.0))
