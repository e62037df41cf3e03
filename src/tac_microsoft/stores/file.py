"""Agent Framework sessions as JSON files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["FileAgentSessionStore"]


class FileAgentSessionStore:
    """One JSON file per session (``AgentSession.to_dict()``) in ``storage_dir``.

    File names are a hash of the session id, so no id can reach outside the directory; files
    are written atomically and read and written off the event loop.
    """

    def __init__(self, storage_dir: str | Path | None = None) -> None:
        base = storage_dir or Path(tempfile.gettempdir()) / "tac_sessions"
        self._storage_dir = Path(base)
        self._storage_dir.mkdir(parents=True, exist_ok=True)

    def path(self, session_id: str) -> Path:
        """The file of a session."""
        digest = hashlib.sha256(session_id.encode()).hexdigest()[:32]
        return self._storage_dir / f"{digest}.json"

    async def load(self, session_id: str) -> Any | None:
        from agent_framework import AgentSession

        path = self.path(session_id)
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except FileNotFoundError:
            return None
        return AgentSession.from_dict(json.loads(text))

    async def save(self, session_id: str, session: Any) -> None:
        data = json.dumps(session.to_dict(), ensure_ascii=False)
        await asyncio.to_thread(self._write, self.path(session_id), data)

    @staticmethod
    def _write(path: Path, data: str) -> None:
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(data, encoding="utf-8")
        temporary.replace(path)

    async def delete(self, session_id: str) -> None:
        await asyncio.to_thread(self.path(session_id).unlink, missing_ok=True)
