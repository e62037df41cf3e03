"""``POST /sandbox/reset`` (where the framework offers ``ctx.on_reset``) forgets product data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from _products_support import asgi_client, ctx_of, make_app

from tac_sandbox._context import SandboxContext

pytestmark = pytest.mark.integration


async def test_reset_hooks_forget_data_but_keep_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks: list[Callable[[], Awaitable[None]]] = []

    def on_reset(self: SandboxContext, hook: Callable[[], Awaitable[None]]) -> None:
        hooks.append(hook)

    monkeypatch.setattr(SandboxContext, "on_reset", on_reset, raising=False)
    app = make_app()
    ident = ctx_of(app).identity
    profiles = f"/memory/v1/Stores/{ident.memory_store_id}/Profiles"
    calls = f"/api/2010-04-01/Accounts/{ident.account_sid}/Calls.json"
    executions = f"/studio/v2/Flows/{ident.studio_flow_sid}/Executions"
    async with asgi_client(app) as http:
        created = await http.post(profiles, json={"traits": {"Contact": {"phone": "+1415"}}})
        profile = created.json()["id"]
        await http.post(calls, data={"To": "+1", "From": "+1", "Twiml": "<Response/>"})
        await http.post(executions, data={"To": "+1", "From": "+1"})
        assert len(hooks) == 4
        for hook in hooks:
            await hook()
        gone = await http.get(f"{profiles}/{profile}")
        store = await http.get(f"/memory/v1/ControlPlane/Stores/{ident.memory_store_id}")
        base = await http.get(
            f"/knowledge/v2/ControlPlane/KnowledgeBases/{ident.knowledge_base_id}"
        )
        no_calls: Any = (await http.get("/sandbox/calls")).json()
        no_executions: Any = (await http.get("/sandbox/studio/executions")).json()
    assert gone.status_code == 404
    assert store.status_code == 200
    assert base.status_code == 200
    assert no_calls == {"calls": []}
    assert no_executions == {"executions": []}
