tac = TAC(config=TACConfig.from_env())
voice_channel = VoiceChannel(tac, config=VoiceChannelConfig(memory_mode="always"))
sms_channel = SMSChannel(tac, config=SMSChannelConfig(memory_mode="always"))


async def handle_message(message, context, memory):
    response = await your_llm(message, memory)
    return response  # TAC routes the response to the correct channel automatically


tac.on_message_ready(handle_message)

# TACFastAPIServer registers webhook and WebSocket routes for configured channels
server = TACFastAPIServer(tac=tac, voice_channel=voice_channel, messaging_channels=[sms_channel])
server.start()
