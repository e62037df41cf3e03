async def handle_interrupt(
    context: ConversationSession,
    interrupt_data,
) -> None:
    # Cancel any pending operations for this conversation
    await cancel_pending_operations(context.conversation_id)


tac.on_interrupt(handle_interrupt)
