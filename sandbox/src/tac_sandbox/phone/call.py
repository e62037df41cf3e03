"""``VoiceCall``: a call running inside a sandbox, driven through its control API.

The sandbox's phone places calls to the app (and answers the app's outbound calls) in the
sandbox process; a test holds a ``VoiceCall`` and speaks through ``/sandbox/voice/calls/...``.
It works the same whether the sandbox runs in-process or as a subprocess.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class _Requester(Protocol):
    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        wait: float = 0.0,
    ) -> Any: ...


@dataclass(frozen=True)
class VoiceReply:
    """One complete agent reply of a :class:`VoiceCall` (``str(reply)`` is its text)."""

    text: str
    position: int
    tokens: tuple[str, ...]
    interrupted: bool
    heard: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> VoiceReply:
        return cls(
            text=doc["text"],
            position=int(doc["position"]),
            tokens=tuple(doc["tokens"]),
            interrupted=bool(doc["interrupted"]),
            heard=doc.get("heard"),
            raw=doc,
        )

    def __str__(self) -> str:
        return self.text


class VoiceCall:
    """A call the sandbox placed or answered, scripted from Python::

    call = await sandbox.call()
    reply = await call.ask("Where is my order?")
    await call.hang_up()
    """

    def __init__(self, client: _Requester, details: dict[str, Any]) -> None:
        self._client = client
        self.id: str = details["id"]
        self.details = details
        self._cursor = 0

    @property
    def _path(self) -> str:
        return f"/sandbox/voice/calls/{self.id}"

    async def say(self, text: str, *, partials: bool | list[str] = False) -> None:
        """The caller speaks (``partials``: unfinalised prompts first, see ``Caller.say``)."""
        await self._client.request(
            "POST", f"{self._path}/say", json={"text": text, "partials": partials}
        )

    async def press(self, digits: str) -> None:
        """The caller presses keys (one ``dtmf`` frame per digit)."""
        await self._client.request("POST", f"{self._path}/press", json={"digits": digits})

    async def interrupt(
        self, utterance: str | None = None, duration_ms: int | None = None
    ) -> dict[str, Any]:
        """The caller barges in; returns the ``interrupt`` frame sent."""
        frame: dict[str, Any] = await self._client.request(
            "POST",
            f"{self._path}/interrupt",
            json={"utterance": utterance, "durationMs": duration_ms},
        )
        return frame

    async def hang_up(self) -> dict[str, Any]:
        """The caller hangs up; returns the call's final details."""
        self.details = await self._client.request("POST", f"{self._path}/hangup")
        return self.details

    async def next_reply(self, timeout: float = 10.0) -> VoiceReply:
        """The agent's next complete reply; ``TimeoutError`` if none in time, ``RuntimeError``
        if the call ended first."""
        result = await self._client.request(
            "GET",
            f"{self._path}/replies",
            params={"after": self._cursor, "wait": timeout},
            wait=timeout,
        )
        if result["replies"]:
            self._cursor += 1
            return VoiceReply.from_json(result["replies"][0])
        if result["ended"]:
            raise RuntimeError(f"call {self.id} ended before another reply")
        raise TimeoutError(f"no reply on call {self.id} within {timeout}s")

    async def ask(self, text: str, timeout: float = 10.0) -> VoiceReply:
        """Say ``text`` and return the agent's next reply."""
        await self.say(text)
        return await self.next_reply(timeout)

    async def refresh(self, *, wait_ended: float = 0.0) -> dict[str, Any]:
        """The call's details (status, endReason, handoffData, transcript, ...); with
        ``wait_ended``, once the call is over (or that many seconds passed)."""
        self.details = await self._client.request(
            "GET",
            self._path,
            params={"wait_ended": wait_ended} if wait_ended else None,
            wait=wait_ended,
        )
        return self.details

    async def wait_ended(self, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the call is over; ``TimeoutError`` if it is not within ``timeout``."""
        details = await self.refresh(wait_ended=timeout)
        if details["status"] in ("new", "ringing", "in-progress"):
            raise TimeoutError(f"call {self.id} still {details['status']} after {timeout}s")
        return details

    async def transcript(self) -> str:
        """The transcript as text, one line per utterance or action."""
        result = await self._client.request("GET", f"{self._path}/transcript")
        return str(result["text"])

    async def events(self) -> list[dict[str, Any]]:
        """The timeline: frames sent and received, HTTP requests, changes."""
        result = await self._client.request("GET", f"{self._path}/events")
        events: list[dict[str, Any]] = result["events"]
        return events

    def __repr__(self) -> str:
        return f"VoiceCall(id={self.id!r}, direction={self.details.get('direction')!r})"
