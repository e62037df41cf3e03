"""``async with`` for the sandbox's clients: leaving the block calls ``aclose()``."""

from __future__ import annotations

from types import TracebackType

from typing_extensions import Self


class AsyncClosing:
    """An async context manager that is itself (``async with x as x``) and calls
    :meth:`aclose` on the way out."""

    async def aclose(self) -> None:
        """Release what the object holds."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
