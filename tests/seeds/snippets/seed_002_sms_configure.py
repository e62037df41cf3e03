from tac.channels.sms import SMSChannel, SMSChannelConfig

sms_channel = SMSChannel(
    tac,
    config=SMSChannelConfig(
        memory_mode="always",
    ),
)


async def handle_message_ready(
    message: str,
    context: ConversationSession,
    memory: TACMemoryResponse | None,
) -> str | None:
    llm_response = await generate_response(message)

    await sms_channel.send_response(
        conversation_id=context.conversation_id,
        response=llm_response,
    )
