async def handle_message_ready(
    message: str,
    context: ConversationSession,
    memory: TACMemoryResponse | None,
) -> str | None:
    if context.channel == "voice":
        return await generate_response(message, max_tokens=100)
    else:
        return await generate_response(message)


tac.on_message_ready(handle_message_ready)
