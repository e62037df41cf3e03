"""Fault injection per product: added latency, error rates and outages."""

from __future__ import annotations

import asyncio
import random

from pydantic import BaseModel, ConfigDict, Field

from tac_sandbox._errors import TwilioError


class FaultRule(BaseModel):
    """Faults applied to every request to one product."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0, description="Added before answering")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="Share of requests failed")
    error_status: int = Field(default=500, ge=400, le=599)
    outage: bool = Field(default=False, description="Fail every request with 503")


class Faults:
    """The fault rules in force, by product name (``memory``, ``conversations``, ...)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: dict[str, FaultRule] = {}
        self._random = random.Random(seed)

    def set(self, product: str, rule: FaultRule) -> None:
        self._rules[product] = rule

    def clear(self, product: str | None = None) -> None:
        if product is None:
            self._rules.clear()
        else:
            self._rules.pop(product, None)

    def rules(self) -> dict[str, FaultRule]:
        return dict(self._rules)

    async def apply(self, product: str) -> TwilioError | None:
        """Wait out the latency, then return the error to answer with, if any."""
        rule = self._rules.get(product)
        if rule is None:
            return None
        if rule.latency_ms:
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule.outage:
            return TwilioError(503, f"Service unavailable (sandbox outage of {product})")
        if rule.error_rate and self._random.random() < rule.error_rate:
            return TwilioError(rule.error_status, f"Injected failure of {product}")
        return None
