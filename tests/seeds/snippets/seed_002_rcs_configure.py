from tac.channels.rcs import RCSChannel, RCSChannelConfig

rcs_channel = RCSChannel(
    tac,
    config=RCSChannelConfig(
        memory_mode="always",
    ),
)
