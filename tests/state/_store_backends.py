"""Shared test types for the store suites."""

from __future__ import annotations

from dataclasses import dataclass

from tac.state import SessionStore

REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Stores:
    """Two handles on one shared state: ``a`` and ``b`` (for Redis, separate connections)."""

    backend: str
    a: SessionStore
    b: SessionStore
