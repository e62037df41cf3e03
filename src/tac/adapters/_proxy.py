"""The wrapper every ``with_tac_memory`` adapter builds its client proxies on."""

from __future__ import annotations

from typing import Any


class Proxy:
    """Forwards every attribute it does not define to the wrapped object; carries the memory
    text the adapter injects."""

    __slots__ = ("_memory", "_target")

    def __init__(self, target: Any, memory: str) -> None:
        self._target = target
        self._memory = memory

    def __getattr__(self, name: str) -> Any:
        if name in Proxy.__slots__:
            raise AttributeError(name)
        return getattr(self._target, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._target!r})"
