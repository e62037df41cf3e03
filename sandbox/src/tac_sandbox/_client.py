"""``SandboxClient``: the sandbox's control and inspection API from Python (async)."""

from __future__ import annotations

from typing import Any

from tac_sandbox._closing import AsyncClosing
from tac_sandbox._http import HttpSender


class SandboxError(RuntimeError):
    """The sandbox answered a control request with an error."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"sandbox answered {status}: {message}")
        self.status = status
        self.body = body


class SandboxClient(AsyncClosing):
    """Drive a running sandbox: act as customers, inspect conversations and webhooks, inject
    faults, reset. Credentials are the sandbox's API key and secret (or account SID and auth
    token)."""

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        # Customers long-poll: a pool that stays cheap with many connections open.
        self._http = HttpSender(
            base_url=self.url, auth=(username, password), timeout=timeout, max_connections=0
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        wait: float = 0.0,
    ) -> Any:
        """One request; returns the decoded JSON (``None`` for 204); raises ``SandboxError``."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        timeout = wait + 30.0 if wait else None
        response = await self._http.request(method, path, json=json, params=clean, timeout=timeout)
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            raise SandboxError(response.status_code, body)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # health and environment

    async def health(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/sandbox/health")
        return result

    async def env(self) -> dict[str, str]:
        """The environment a TAC app needs against this sandbox."""
        result: dict[str, str] = await self.request("GET", "/sandbox/env")
        return result

    async def set_app_url(self, url: str) -> None:
        """Send the default configuration's webhooks to ``url``/webhook from now on."""
        await self.request("PUT", "/sandbox/app-url", json={"url": url})

    async def reset(self) -> None:
        """Forget conversations, deliveries, faults and records (the identity stays)."""
        await self.request("POST", "/sandbox/reset")

    # customers (messaging; the voice caller will get its own methods)

    async def customer_send(
        self,
        channel: str,
        text: str,
        address: str | None = None,
        *,
        name: str | None = None,
        participant_type: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "text": text,
            "address": address,
            "name": name,
            "participantType": participant_type,
        }
        result: dict[str, Any] = await self.request(
            "POST",
            f"/sandbox/customers/{channel}/messages",
            json={k: v for k, v in body.items() if v is not None},
        )
        return result

    async def customer_replies(
        self, channel: str, address: str, *, after: int = 0, wait: float = 0.0
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self.request(
            "GET",
            f"/sandbox/customers/{channel}/replies",
            params={"address": address, "after": after, "wait": wait},
            wait=wait,
        )
        return result

    # voice (the sandbox's phone; drive one call with tac_sandbox.VoiceCall)

    async def place_call(
        self,
        *,
        from_: str | None = None,
        to: str | None = None,
        custom_parameters: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        app_url: str | None = None,
    ) -> dict[str, Any]:
        """Have the sandbox call the app (``POST /sandbox/voice/calls``); the call's details."""
        body = {
            "from": from_,
            "to": to,
            "customParameters": custom_parameters,
            "params": params,
            "appUrl": app_url,
        }
        result: dict[str, Any] = await self.request(
            "POST", "/sandbox/voice/calls", json={k: v for k, v in body.items() if v is not None}
        )
        return result

    async def voice_calls(
        self, *, direction: str | None = None, after: int = 0, wait: float = 0.0
    ) -> dict[str, Any]:
        """Calls placed or answered after cursor ``after`` (``{"calls", "cursor"}``)."""
        result: dict[str, Any] = await self.request(
            "GET",
            "/sandbox/voice/calls",
            params={"direction": direction, "after": after, "wait": wait},
            wait=wait,
        )
        return result

    async def voice_call(self, call_id: str, *, wait_ended: float = 0.0) -> dict[str, Any]:
        """One call with its transcript; ``wait_ended``: once it is over."""
        result: dict[str, Any] = await self.request(
            "GET",
            f"/sandbox/voice/calls/{call_id}",
            params={"wait_ended": wait_ended} if wait_ended else None,
            wait=wait_ended,
        )
        return result

    # inspection

    async def conversations(
        self, status: str | None = None, channel: str | None = None
    ) -> list[dict[str, Any]]:
        result = await self.request(
            "GET", "/sandbox/conversations", params={"status": status, "channel": channel}
        )
        conversations: list[dict[str, Any]] = result["conversations"]
        return conversations

    async def messages(
        self, conversation_id: str, *, after: int = 0, wait: float = 0.0
    ) -> list[dict[str, Any]]:
        """Communications of a conversation after cursor ``after`` (each has a ``seq``)."""
        result = await self.request(
            "GET",
            f"/sandbox/conversations/{conversation_id}/messages",
            params={"after": after, "wait": wait},
            wait=wait,
        )
        messages: list[dict[str, Any]] = result["messages"]
        return messages

    async def deliveries(
        self,
        *,
        event_type: str | None = None,
        conversation_id: str | None = None,
        outcome: str | None = None,
        min_count: int = 0,
        wait: float = 0.0,
    ) -> list[dict[str, Any]]:
        """Webhook delivery attempts; with ``wait``, until at least ``min_count`` match."""
        result = await self.request(
            "GET",
            "/sandbox/webhooks/deliveries",
            params={
                "eventType": event_type,
                "conversationId": conversation_id,
                "outcome": outcome,
                "min": min_count,
                "wait": wait,
            },
            wait=wait,
        )
        deliveries: list[dict[str, Any]] = result["deliveries"]
        return deliveries

    async def webhooks_idle(self, wait: float = 5.0) -> bool:
        """Wait until every queued webhook was delivered or given up."""
        result = await self.request(
            "GET", "/sandbox/webhooks/idle", params={"wait": wait}, wait=wait
        )
        return bool(result["idle"])

    async def clear_deliveries(self) -> None:
        await self.request("DELETE", "/sandbox/webhooks/deliveries")

    # faults and policies

    async def set_webhook_faults(
        self, *, latency_ms: float = 0.0, drop_rate: float = 0.0, duplicate_rate: float = 0.0
    ) -> None:
        await self.request(
            "PUT",
            "/sandbox/webhooks/faults",
            json={
                "latency_ms": latency_ms,
                "drop_rate": drop_rate,
                "duplicate_rate": duplicate_rate,
            },
        )

    async def clear_webhook_faults(self) -> None:
        await self.request("DELETE", "/sandbox/webhooks/faults")

    async def set_webhook_policy(
        self, *, attempts: int = 5, base_delay_seconds: float = 0.5, timeout_seconds: float = 10.0
    ) -> None:
        await self.request(
            "PUT",
            "/sandbox/webhooks/policy",
            json={
                "attempts": attempts,
                "base_delay_seconds": base_delay_seconds,
                "timeout_seconds": timeout_seconds,
            },
        )

    async def set_fault(
        self,
        product: str,
        *,
        latency_ms: float = 0.0,
        error_rate: float = 0.0,
        error_status: int = 500,
        outage: bool = False,
    ) -> None:
        """Inject faults into one product's API (``conversations``, ``memory``, ...)."""
        await self.request(
            "PUT",
            f"/sandbox/faults/{product}",
            json={
                "latency_ms": latency_ms,
                "error_rate": error_rate,
                "error_status": error_status,
                "outage": outage,
            },
        )

    async def clear_faults(self, product: str | None = None) -> None:
        await self.request("DELETE", "/sandbox/faults", params={"product": product})

    async def requests(self, product: str | None = None) -> list[dict[str, Any]]:
        result = await self.request("GET", "/sandbox/requests", params={"product": product})
        records: list[dict[str, Any]] = result["requests"]
        return records
