async def handle_conversation_ended(context: ConversationSession) -> None:
    # Clean up resources for this conversation
    conversation_history.pop(context.conversation_id, None)


tac.on_conversation_ended(handle_conversation_ended)
