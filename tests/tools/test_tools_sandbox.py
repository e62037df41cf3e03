"""The built-in knowledge and memory tools against the sandbox's Knowledge and Memory."""

from pathlib import Path

import pytest

from tac import TAC, TACConfig
from tac.models.memory import ObservationCreate
from tac.models.session import AuthorInfo, ConversationSession
from tac.sandbox import Sandbox
from tac.tools import create_knowledge_tool, create_memory_tool

pytestmark = pytest.mark.integration

POLICY = """# Returns policy

You can return any item within 30 days of delivery for a full refund.

# Delivery

Standard delivery takes 3 to 5 business days.
"""


async def test_knowledge_tool_searches_the_knowledge_base(tmp_path: Path) -> None:
    (tmp_path / "policy.md").write_text(POLICY)
    async with Sandbox.start() as sandbox:
        await sandbox.client.request(
            "POST", "/sandbox/knowledge/load", json={"path": str(tmp_path)}
        )
        tac = TAC(TACConfig.from_env(sandbox.env))
        assert tac.knowledge_client is not None
        assert tac.config.knowledge_base_id is not None
        base = await tac.knowledge_client.get_knowledge_base(tac.config.knowledge_base_id)
        tool = await create_knowledge_tool(tac.knowledge_client, tac.config.knowledge_base_id)
        expected_name = "search_" + (base.display_name or "").lower().replace(" ", "_").replace(
            "-", "_"
        )
        assert tool.name == expected_name
        assert tool.description.endswith("The input MUST be a question in the form of a string.")
        result = await tool(query="How many days do I have to return an item?")
        assert "30 days" in str(result)
        # The OpenAI Agents SDK form serialises the same result to JSON.
        assert "30 days" in await tool.invoke('{"query": "returns policy"}')
        await tac.aclose()


async def test_memory_tool_works_before_the_profile_id_is_known() -> None:
    async with Sandbox.start() as sandbox:
        tac = TAC(TACConfig.from_env(sandbox.env))
        memory_client = tac.conversation_memory_client
        assert memory_client is not None
        profile_id = await memory_client.create_profile({"Contact": {"phone": "+15005550177"}})
        await memory_client.create_observations(
            profile_id, [ObservationCreate(content="Allergic to peanuts")]
        )
        session = ConversationSession(
            conversation_id="conv_conversation_01abcdefghjkmnpqrstvwxyz0",
            channel="whatsapp",
            author_info=AuthorInfo(address="whatsapp:+15005550177"),
        )
        assert session.profile_id is None
        tool = create_memory_tool(memory_client, session)
        assert "query" in tool.params_json_schema["properties"]
        assert "session" not in tool.params_json_schema["properties"]
        result = await tool(query="any allergies to peanuts?")
        assert "Allergic to peanuts" in str(result)
        await tac.aclose()
