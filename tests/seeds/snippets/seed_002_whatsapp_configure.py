from tac.channels.whatsapp import WhatsAppChannel, WhatsAppChannelConfig

whatsapp_channel = WhatsAppChannel(
    tac,
    config=WhatsAppChannelConfig(
        memory_mode="always",
    ),
)
