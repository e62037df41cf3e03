"""The handoff tool and the CI webhook against the sandbox: Orchestrator, Memory, Studio,
Conversation Intelligence and the Flex view, with TAC's real clients and server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tac import TAC, TACConfig
from tac.models.session import AuthorInfo, Channel, ConversationSession
from tac.sandbox import Sandbox, serve_app
from tac.server import TACFastAPIServer, TACServerConfig
from tac.tools.handoff import create_studio_handoff_tool
from tests._ports import free_port

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def app_and_sandbox() -> AsyncIterator[tuple[Sandbox, TAC]]:
    """A sandbox, and a TAC server with no channel (only /ci-webhook) on the app's port."""
    port = free_port()
    async with Sandbox.start(
        app_url=f"http://127.0.0.1:{port}", webhook_attempts=1, webhook_base_delay_seconds=0.01
    ) as sandbox:
        tac = TAC(TACConfig.from_env(sandbox.env))
        server = TACFastAPIServer(tac, config=TACServerConfig(host="127.0.0.1", port=port))
        async with serve_app(server.app, port=port):
            yield sandbox, tac


async def customer_session(sandbox: Sandbox, text: str) -> ConversationSession:
    """A customer writes; the session the SMS channel would build for that conversation."""
    customer = sandbox.customer("sms")
    await customer.send(text)
    conversation_id = customer.conversation_id
    assert conversation_id is not None
    conversation = await sandbox.client.request(
        "GET", f"/conversations/v2/Conversations/{conversation_id}"
    )
    (person,) = [p for p in conversation["participants"] if p["type"] == "CUSTOMER"]
    return ConversationSession(
        conversation_id=conversation_id,
        channel=Channel.SMS,
        profile_id=person.get("profileId"),
        author_info=AuthorInfo(address=customer.address, participant_id=person["id"]),
    )


async def flex_task(sandbox: Sandbox, conversation_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        answer = await sandbox.client.request(
            "GET", "/sandbox/flex/tasks", params={"conversationId": conversation_id}
        )
        if answer["tasks"] and answer["tasks"][0]["summary"]:
            task: dict[str, Any] = answer["tasks"][0]
            return task
        await asyncio.sleep(0.05)
    raise AssertionError(f"no Flex task with a summary: {answer}")


@pytest.mark.parametrize("mode", ["memory", "webhook"])
async def test_sms_handoff_reaches_flex_with_history_and_summary(mode: str) -> None:
    async with app_and_sandbox() as (sandbox, tac):
        await sandbox.client.request(
            "PUT", "/sandbox/intelligence/rules/inactive", json={"mode": mode}
        )
        session = await customer_session(sandbox, "My refund never arrived, I want a person")
        session, _ = await tac.start_session(session)
        ended: list[str] = []
        tac.on_conversation_ended(lambda s: ended.append(s.conversation_id))
        tool = create_studio_handoff_tool(tac, session, attributes={"department": "billing"})

        result = await tool(reason="refund missing")

        task = await flex_task(sandbox, session.conversation_id)
        conversation = await sandbox.client.request(
            "GET", f"/conversations/v2/Conversations/{session.conversation_id}"
        )
        deliveries = await sandbox.client.request("GET", "/sandbox/intelligence/deliveries")
        await tac.aclose()

    assert result == {"status": "handoff_initiated", "channel": "sms"}
    assert ended == [session.conversation_id]
    assert conversation["status"] == "INACTIVE"
    assert conversation["configuration"]["statusCallbacks"] == []
    assert task["customer"]["address"] == session.author_info.address  # type: ignore[union-attr]
    assert task["customer"]["profileId"] == session.profile_id
    assert task["agentAddress"] == sandbox.identity.phone_number
    assert task["attributes"] == {"department": "billing", "reason": "refund missing"}
    assert [line["text"] for line in task["history"]] == [
        "My refund never arrived, I want a person"
    ]
    assert task["summary"]["source"] == "conversation-intelligence"
    assert "refund" in task["summary"]["content"]
    if mode == "webhook":
        assert [d["status"] for d in deliveries["deliveries"]] == [200]


async def test_a_wrong_flow_fails_without_touching_the_conversation() -> None:
    async with app_and_sandbox() as (sandbox, tac):
        session = await customer_session(sandbox, "hello")
        tac.config.studio_handoff_flow_sid = "FW" + "0" * 32
        result = await create_studio_handoff_tool(tac, session)(reason="x")
        conversation = await sandbox.client.request(
            "GET", f"/conversations/v2/Conversations/{session.conversation_id}"
        )
        tasks = await sandbox.client.request("GET", "/sandbox/flex/tasks")
        await tac.aclose()
    assert result["status"] == "handoff_failed"
    assert "404" in result["reason"]
    assert conversation["status"] == "ACTIVE"
    assert tasks == {"tasks": []}
