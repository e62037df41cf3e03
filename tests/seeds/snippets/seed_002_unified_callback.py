async def handle_message_ready(
    message: str,
    context: ConversationSession,
    memory: TACMemoryResponse | None,
) -> str | None:
    llm_response = await generate_response(message)
    return llm_response


tac.on_message_ready(handle_message_ready)
