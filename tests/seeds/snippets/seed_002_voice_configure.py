from tac.channels.voice import VoiceChannel, VoiceChannelConfig

voice_channel = VoiceChannel(
    tac,
    config=VoiceChannelConfig(
        memory_mode="always",
    ),
)
