"""The state one sandbox shares between its products."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter

from tac_sandbox._db import Database
from tac_sandbox._events import EventBus
from tac_sandbox._faults import Faults
from tac_sandbox._products import Products
from tac_sandbox._settings import SandboxIdentity, SandboxSettings

Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class RequestRecord:
    """One API request the sandbox answered (for inspection and for counting calls in tests)."""

    product: str
    method: str
    path: str
    status: int
    at: float
    duration_ms: float

    def to_json(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "at": self.at,
            "durationMs": round(self.duration_ms, 3),
        }


@dataclass
class SandboxContext:
    """Settings, identity, storage, event bus, faults, and what products installed.

    A product module's ``install(ctx)`` adds its API router under ``/{product}`` with
    :meth:`add_product`, its control endpoints with :meth:`add_control`, background work with
    :meth:`on_startup`/:meth:`on_shutdown`, state to forget on reset with :meth:`on_reset`, and
    what it offers other products as its attribute of :attr:`products`.
    """

    settings: SandboxSettings
    db: Database
    identity: SandboxIdentity
    bus: EventBus = field(default_factory=EventBus)
    faults: Faults = field(default_factory=Faults)
    requests: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=20_000))
    product_routers: list[tuple[str, APIRouter]] = field(default_factory=list)
    control_routers: list[APIRouter] = field(default_factory=list)
    startup_hooks: list[Hook] = field(default_factory=list)
    shutdown_hooks: list[Hook] = field(default_factory=list)
    reset_hooks: list[Hook] = field(default_factory=list)
    products: Products = field(default_factory=Products)

    def add_product(self, product: str, router: APIRouter) -> None:
        self.product_routers.append((product, router))

    def add_control(self, router: APIRouter) -> None:
        self.control_routers.append(router)

    def on_startup(self, hook: Hook) -> None:
        self.startup_hooks.append(hook)

    def on_shutdown(self, hook: Hook) -> None:
        self.shutdown_hooks.append(hook)

    def on_reset(self, hook: Hook) -> None:
        """Run ``hook`` on ``POST /sandbox/reset`` (forget state; keep the identity)."""
        self.reset_hooks.append(hook)

    def provide(self, name: str, value: Any) -> None:
        """Offer ``value`` under ``name`` (modules not yet on :attr:`products`)."""
        self.products.named[name] = value

    def service(self, name: str) -> Any | None:
        """What :meth:`provide` offered, or the :attr:`products` attribute ``name`` names
        (``"voice.phone"``, ``"webhooks"``, ``"calls.set_status"``); prefer :attr:`products`."""
        if name in self.products.named:
            return self.products.named[name]
        alias = {"voice.phone": "phone"}.get(name, name)
        owner, _, member = alias.partition(".")
        found = getattr(self.products, owner, None)
        return getattr(found, member, None) if member and found is not None else found

    def record(self, product: str, method: str, path: str, status: int, started: float) -> None:
        now = time.perf_counter()
        self.requests.append(
            RequestRecord(product, method, path, status, time.time(), (now - started) * 1000)
        )
