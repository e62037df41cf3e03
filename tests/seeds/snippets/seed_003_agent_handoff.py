from typing import Any
from agents import Agent, Runner, set_tracing_disabled
from dotenv import load_dotenv
from tac import TAC, TACConfig
from tac.channels.sms import SMSChannel, SMSChannelConfig
from tac.channels.voice import VoiceChannel, VoiceChannelConfig
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse
from tac.server import TACFastAPIServer
from tac.tools.handoff import create_studio_handoff_tool

load_dotenv()
set_tracing_disabled(True)
tac = TAC(config=TACConfig.from_env())
# Verify the handoff-specific env var is set.
if not tac.config.studio_handoff_flow_sid:
    raise RuntimeError(
        "TWILIO_STUDIO_HANDOFF_FLOW_SID is required to run the handoff example. "
        "Set it in your .env (see .env.example)."
    )
SYSTEM_INSTRUCTIONS = (
    "You are a customer service agent speaking with a user over voice or SMS. "
    "Keep responses short and conversational — a sentence or two. "
    "Do not use markdown, asterisks, bullets, or emojis; your words will be "
    "spoken aloud or sent as plain text. "
    "If the user asks to speak with a human, or if you cannot resolve their issue, "
    "use the handoff tool to transfer them to a human agent."
)
# Example app-defined routing metadata attached to every handoff. Keys and
# values are arbitrary — pick whatever your downstream system expects. For
# Flex, these surface as TaskRouter task attributes.
HANDOFF_ATTRIBUTES = {
    "department": "support",
    "priority": "normal",
}
conversation_history: dict[str, list[Any]] = {}


async def handle_message_ready(
    user_message: str,
    context: ConversationSession,
    memory_response: TACMemoryResponse | None,
) -> str:
    # from app.py
    conv_id = context.conversation_id
    from tac.tools.base import function_tool

    if conv_id not in conversation_history:
        # inital initilization :
        conversation_history[conv_id] = [{"role": "system", "content": SYSTEM_INSTRUCTIONS}]
    # adding user message in conversation
    conversation_history[conv_id].append({"role": "user", "content": user_message})
    handoff_tool = create_studio_handoff_tool(tac, context, attributes=HANDOFF_ATTRIBUTES)
    # Access memory (observations, summaries, communications) @@@@@@@@@
    if memory_response:
        for obs in memory_response.observations:
            print(obs.content)
        #  print(f"Observations @@@@@@@@@@: {memory_response.observations}")
    if memory_response:
        # print(f"User traits: {context.profile.traits}")
        profile = context.profile
        if profile and profile.traits:
            contact_group = profile.traits.get("Contact", {})
            language = contact_group.get("language")
            print(f"User preferred language:  {language}")
            uselang = f"Switch to language {language} for further communication,you can change the language to desired language if you are asked to change language"
            SYSTEM_INSTRUCTIONS_modified = SYSTEM_INSTRUCTIONS + uselang
        else:
            SYSTEM_INSTRUCTIONS_modified = SYSTEM_INSTRUCTIONS
    agent = Agent(
        name="Customer Service Agent",
        instructions=SYSTEM_INSTRUCTIONS_modified,
        tools=[handoff_tool.to_openai_agents_sdk_tool()],
    )
    history = conversation_history.get(context.conversation_id, [])
    agent_input = history + [{"role": "user", "content": user_message}]
    # sending it to openAI, result is returned from openAI
    result = await Runner.run(agent, agent_input)
    # result is added in conv history :
    conversation_history[context.conversation_id] = result.to_input_list()
    return result.final_output_as(str)


voice_channel = VoiceChannel(tac, config=VoiceChannelConfig(memory_mode="always"))
sms_channel = SMSChannel(tac, config=SMSChannelConfig(memory_mode="always"))
tac.on_message_ready(handle_message_ready)
if __name__ == "__main__":
    server = TACFastAPIServer(
        tac=tac, voice_channel=voice_channel, messaging_channels=[sms_channel]
    )
    server.start()
