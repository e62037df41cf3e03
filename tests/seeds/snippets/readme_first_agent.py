from tac import TAC, TACConfig
from tac.channels.sms import SMSChannel, SMSChannelConfig
from tac.channels.voice import VoiceChannel, VoiceChannelConfig
from tac.server import TACFastAPIServer

tac = TAC(config=TACConfig.from_env())
voice_channel = VoiceChannel(tac, config=VoiceChannelConfig(memory_mode="always"))
sms_channel = SMSChannel(tac, config=SMSChannelConfig(memory_mode="always"))


async def handle_message(message, context, memory):
    name = (context.profile.traits.get("Contact", {}) if context.profile else {}).get("name")
    return f"Hello {name or 'there'}, you said: {message}"


tac.on_message_ready(handle_message)

server = TACFastAPIServer(tac=tac, voice_channel=voice_channel, messaging_channels=[sms_channel])
server.start()
