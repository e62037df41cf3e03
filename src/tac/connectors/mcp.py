"""TAC and the Model Context Protocol (``pip install "opentac[mcp]"``), both ways.

- :func:`create_mcp_server`: TAC's knowledge search, customer memory and human handoff (and
  any TAC tools of yours) served over MCP, for agents that run elsewhere: mount
  ``server.streamable_http_app()`` or run it over stdio. Memory and handoff act on a live
  conversation, named by its ``conversation_id``.
- :func:`mcp_tools`: the tools of an MCP server as TAC tools, for any connector or LLM API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

try:
    import mcp_types as types
    from mcp.server.lowlevel import Server
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('the MCP surface needs the MCP SDK: pip install "opentac[mcp]"') from exc

from tac.tools.base import TACTool, create_tool
from tac.tools.handoff import DEFAULT_HANDOFF_TOOL_DESCRIPTION, create_studio_handoff_tool
from tac.tools.knowledge import search_knowledge
from tac.tools.memory import DEFAULT_MEMORY_TOOL_DESCRIPTION, create_memory_tool

if TYPE_CHECKING:
    from tac.core.tac import TAC

__all__ = ["create_mcp_server", "mcp_tools", "tac_mcp_tools"]

_CONVERSATION = {
    "type": "string",
    "description": "The conversation's id (conv_…), as TAC's session has it.",
}


def _schema(**properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }


def tac_mcp_tools(tac: TAC) -> list[TACTool]:
    """TAC's own tools as MCP offers them: ``search_knowledge`` (when a knowledge base is
    configured), ``retrieve_profile_memory`` and ``handoff`` (in Orchestrator mode)."""
    tools: list[TACTool] = []
    knowledge = tac.knowledge_client
    knowledge_base_id = tac.config.knowledge_base_id
    if knowledge is not None and knowledge_base_id:
        kb_id: str = knowledge_base_id
        client = knowledge

        async def search(query: str) -> list[dict[str, Any]]:
            return await search_knowledge(query, client, kb_id, 5)

        tools.append(
            create_tool(
                "search_knowledge",
                "Search the business's knowledge base. The input MUST be a question.",
                _schema(query={"type": "string", "description": "The question."}),
                search,
            )
        )
    if tac.conversation_orchestrator_client is None:
        return tools

    async def memory(conversation_id: str, query: str) -> Any:
        session = await _session(tac, conversation_id)
        memory_client = tac.conversation_memory_client
        assert memory_client is not None
        return await create_memory_tool(memory_client, session)(query=query)

    async def handoff(conversation_id: str, reason: str) -> Any:
        session = await _session(tac, conversation_id)
        return await create_studio_handoff_tool(tac, session)(reason=reason)

    tools.append(
        create_tool(
            "retrieve_profile_memory",
            DEFAULT_MEMORY_TOOL_DESCRIPTION,
            _schema(
                conversation_id=_CONVERSATION,
                query={"type": "string", "description": "What to recall about the customer."},
            ),
            memory,
        )
    )
    if tac.config.studio_handoff_flow_sid:
        tools.append(
            create_tool(
                "handoff",
                DEFAULT_HANDOFF_TOOL_DESCRIPTION,
                _schema(
                    conversation_id=_CONVERSATION,
                    reason={"type": "string", "description": "Why a human should take over."},
                ),
                handoff,
            )
        )
    return tools


async def _session(tac: TAC, conversation_id: str) -> Any:
    session = await tac.get_session(conversation_id)
    if session is None:
        raise LookupError(f"no live conversation {conversation_id!r}")
    return session


def create_mcp_server(
    tac: TAC,
    tools: Sequence[TACTool] = (),
    *,
    include_tac_tools: bool = True,
    name: str = "opentac",
) -> Server[Any]:
    """An MCP server (the SDK's low-level ``Server``) offering TAC's tools and ``tools``.

    A tool that fails answers with ``isError: true`` and the reason, never a protocol error.
    """
    offered = [*(tac_mcp_tools(tac) if include_tac_tools else []), *tools]
    by_name: dict[str, TACTool] = {}
    for tool in offered:
        if tool.name in by_name:
            raise ValueError(f"two tools are named {tool.name!r}")
        by_name[tool.name] = tool

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.params_json_schema,
                )
                for tool in offered
            ]
        )

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = by_name.get(params.name)
        if tool is None:
            return _result({"error": {"type": "unknown_tool", "message": params.name}}, True)
        result = await tool(**(params.arguments or {}))
        failed = isinstance(result, dict) and "error" in result and len(result) == 1
        return _result(result, failed)

    return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


def _result(value: Any, is_error: bool) -> types.CallToolResult:
    text = json.dumps(value, ensure_ascii=False)
    structured = value if isinstance(value, dict) else {"result": value}
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content=structured, is_error=is_error
    )


async def mcp_tools(client: Any, *, names: Sequence[str] | None = None) -> list[TACTool]:
    """The tools of a connected MCP client (``mcp.Client``) as TAC tools.

    Each call goes to the server; its structured result (or its text) comes back, and a tool
    error comes back as ``{"error": ...}`` like any TAC tool's.
    """
    listed = await client.list_tools()
    tools: list[TACTool] = []
    for spec in listed.tools:
        if names is not None and spec.name not in names:
            continue
        tools.append(
            create_tool(
                spec.name,
                spec.description or spec.name,
                dict(spec.input_schema),
                _caller(client, spec.name),
            )
        )
    return tools


def _caller(client: Any, name: str) -> Any:
    async def call(**arguments: Any) -> Any:
        result = await client.call_tool(name, arguments)
        if result.structured_content is not None:
            value: Any = result.structured_content
        else:
            texts = [block.text for block in result.content if getattr(block, "text", None)]
            value = "\n".join(texts)
        if result.is_error:
            raise RuntimeError(json.dumps(value) if not isinstance(value, str) else value)
        if isinstance(value, Mapping) and set(value) == {"result"}:
            return value["result"]
        return value

    return call
