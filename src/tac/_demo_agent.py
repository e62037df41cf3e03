"""The example agent of ``opentac demo``: SMS, WhatsApp, RCS, Chat and voice, memory,
knowledge and human handoff, as an ordinary TAC app.

Offline (the default) it is a small deterministic agent: it greets the customer by the name in
their Memory profile, answers from the bundled knowledge base through the knowledge tool,
speaks the language of the profile's ``Contact.language`` trait, and calls the handoff tool
when the customer asks for a person. With ``OPENAI_API_KEY`` (and optionally an
OpenAI-compatible ``OPENAI_BASE_URL`` and ``OPENAI_MODEL``) a real model answers instead,
with the customer's memory added by :func:`tac.adapters.openai.with_tac_memory` and the same
two tools.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from tac import TAC, TACConfig
from tac.models.session import ConversationSession
from tac.models.tac import TACMemoryResponse
from tac.tools.base import TACTool
from tac.tools.handoff import create_studio_handoff_tool
from tac.tools.knowledge import create_knowledge_tool

__all__ = ["DEFAULT_MODEL", "PHRASES", "DemoAgent", "build_agent", "language_of"]

DEFAULT_MODEL = "gpt-4o-mini"
KNOWLEDGE_TOOL = "search_store_help"
HANDOFF_ATTRIBUTES = {"department": "support", "priority": "normal"}
HANDOFF_REASON = "The customer asked to speak with a human agent."
INSTRUCTIONS = (
    "You are the customer service agent of an online store, speaking with a customer over "
    "voice or text. Keep answers to a sentence or two of plain text (no markdown): they may be "
    "spoken aloud. Look facts up with the knowledge tool; never invent policies. If the "
    "customer asks for a person, or you cannot help, call the handoff tool."
)
_MIN_SCORE = 0.2
_MAX_TOOL_ROUNDS = 4

# What the offline agent says, per language. The knowledge base itself is in English.
PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "hello": "Hello {name}!",
        "hello_anonymous": "Hello!",
        "welcome_back": "Welcome back, {name}! Last time: {summary}",
        "help": "How can I help you today?",
        "found": "{answer}",
        "not_found": "I could not find that in our help center. Ask me about returns, "
        "delivery or opening hours, or ask for a human.",
        "handoff": "I'm connecting you with a human agent now; they will see our conversation.",
        "handoff_failed": "I could not reach a human agent just now, sorry. Please try again "
        "in a moment.",
        "dtmf": "You pressed {digit}.",
    },
    "es": {
        "hello": "¡Hola, {name}!",
        "hello_anonymous": "¡Hola!",
        "welcome_back": "¡Bienvenido de nuevo, {name}! La última vez: {summary}",
        "help": "¿En qué puedo ayudarte hoy?",
        "found": "Según nuestro centro de ayuda (en inglés): {answer}",
        "not_found": "No encontré eso en nuestro centro de ayuda. Pregúntame por "
        "devoluciones, envíos u horarios, o pide hablar con una persona.",
        "handoff": "Te paso ahora con un agente humano; verá nuestra conversación.",
        "handoff_failed": "Lo siento, ahora no puedo contactar con un agente humano. "
        "Inténtalo de nuevo en un momento.",
        "dtmf": "Has pulsado {digit}.",
    },
    "fr": {
        "hello": "Bonjour {name} !",
        "hello_anonymous": "Bonjour !",
        "welcome_back": "Bon retour, {name} ! La dernière fois : {summary}",
        "help": "Comment puis-je vous aider aujourd'hui ?",
        "found": "D'après notre centre d'aide (en anglais) : {answer}",
        "not_found": "Je n'ai pas trouvé cela dans notre centre d'aide. Demandez-moi les "
        "retours, la livraison ou les horaires, ou demandez un conseiller.",
        "handoff": "Je vous mets en relation avec un conseiller ; il verra notre conversation.",
        "handoff_failed": "Désolé, je ne peux pas joindre de conseiller pour le moment. "
        "Réessayez dans un instant.",
        "dtmf": "Vous avez appuyé sur {digit}.",
    },
    "de": {
        "hello": "Hallo {name}!",
        "hello_anonymous": "Hallo!",
        "welcome_back": "Willkommen zurück, {name}! Letztes Mal: {summary}",
        "help": "Wie kann ich Ihnen heute helfen?",
        "found": "Laut unserem Hilfe-Center (auf Englisch): {answer}",
        "not_found": "Das habe ich in unserem Hilfe-Center nicht gefunden. Fragen Sie nach "
        "Rückgabe, Lieferung oder Öffnungszeiten, oder nach einem Menschen.",
        "handoff": "Ich verbinde Sie jetzt mit einem Mitarbeiter; er sieht unser Gespräch.",
        "handoff_failed": "Leider erreiche ich gerade keinen Mitarbeiter. Bitte versuchen Sie "
        "es gleich noch einmal.",
        "dtmf": "Sie haben {digit} gedrückt.",
    },
}
_LANGUAGE_NAMES = {
    "en": ("english", "en", "en-us", "en-gb", "inglés", "anglais", "englisch"),
    "es": ("spanish", "es", "es-es", "es-mx", "español", "espanol", "castellano"),
    "fr": ("french", "fr", "fr-fr", "français", "francais", "francés"),
    "de": ("german", "de", "de-de", "deutsch", "alemán", "allemand"),
}
_LANGUAGES = {alias: code for code, names in _LANGUAGE_NAMES.items() for alias in names}
_HUMAN = re.compile(
    r"\b(human|person|someone real|real agent|representative|operator|humano|persona|"
    r"agente|humain|conseiller|mensch|mitarbeiter)\b",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^\s*(hi|hello|hey|good (morning|afternoon|evening)|hola|buenos|buenas|bonjour|salut|"
    r"hallo|guten)\b",
    re.IGNORECASE,
)
_NAME_TRAITS = ("name", "firstName", "first_name")
# ConversationRelay's language codes for text-to-speech and transcription
SPEECH_LANGUAGES = {"en": "en-US", "es": "es-ES", "fr": "fr-FR", "de": "de-DE"}


def language_of(session: ConversationSession) -> str:
    """The language code (``en``, ``es``, ``fr``, ``de``) of the profile's language trait."""
    value = _contact(session).get("language")
    if not isinstance(value, str):
        return "en"
    return _LANGUAGES.get(value.strip().lower(), "en")


def _contact(session: ConversationSession) -> Mapping[str, Any]:
    traits = session.profile.traits if session.profile else {}
    contact = traits.get("Contact") if isinstance(traits, Mapping) else None
    return contact if isinstance(contact, Mapping) else {}


def _name(session: ConversationSession) -> str | None:
    contact = _contact(session)
    for key in _NAME_TRAITS:
        value = contact.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().split()[0]
    return None


_STOPWORDS = frozenset(
    {"what", "when", "where", "which", "your", "does", "have", "with", "that", "this", "from"}
    | {"about", "there", "their", "they", "will", "would", "could", "should", "please", "tell"}
)


def _words(text: str) -> set[str]:
    """Word stems (first four letters) of the words that carry meaning."""
    found = (w.strip("?.,!¿¡:;()#").lower() for w in text.split())
    return {w[:4] for w in found if len(w) > 3 and w not in _STOPWORDS}


def _best_paragraph(text: str, question: str) -> str | None:
    """The paragraph of knowledge ``text`` that shares the most words with the question (a
    paragraph's heading counts as part of it); ``None`` when none shares any."""
    asked = _words(question)
    sections: list[tuple[int, str]] = []
    heading = ""
    for block in (b.strip() for b in text.split("\n\n")):
        if block.startswith("#"):
            heading, _, rest = block.partition("\n")
            block = rest.strip()
        if block:
            sections.append((len(asked & _words(heading + " " + block)), block))
    score, best = max(sections, key=lambda s: s[0], default=(0, ""))
    return " ".join(best.split()) if score else None


async def _stream_words(text: str) -> AsyncIterator[str]:
    words = text.split(" ")
    for index, word in enumerate(words):
        yield word if index == len(words) - 1 else word + " "


class DemoAgent:
    """The ``on_message_ready`` callback of the example agent (offline, or with a model).

    ``openai_client``: an ``openai.AsyncOpenAI`` client to answer with a real model;
    ``None`` answers offline.
    """

    def __init__(self, tac: TAC, *, openai_client: Any = None, model: str = DEFAULT_MODEL):
        self.tac = tac
        self.openai_client = openai_client
        self.model = model
        self._knowledge: TACTool | None = None
        # voice: switches the call's speech language (``VoiceChannel.set_language``)
        self.set_speech_language: Callable[[str, str], Awaitable[None]] | None = None
        # conversation id -> chat messages so far (model only); dropped when the session ends
        self._history: dict[str, list[dict[str, Any]]] = {}

    async def __call__(
        self, message: str, session: ConversationSession, memory: TACMemoryResponse | None
    ) -> str | AsyncIterator[str]:
        if self.openai_client is not None:
            tokens = self._model_turn(message, session, memory)
        else:
            tokens = _stream_words(await self.answer(message, session, memory))
        if session.channel == "voice":
            code = language_of(session)
            if code != "en" and self.set_speech_language is not None:
                await self.set_speech_language(session.conversation_id, SPEECH_LANGUAGES[code])
            return tokens  # streamed to the caller token by token
        return "".join([token async for token in tokens])

    async def forget(self, session: ConversationSession) -> None:
        """``on_conversation_ended``: drop the conversation's history."""
        self._history.pop(session.conversation_id, None)

    async def tools(self, session: ConversationSession) -> list[TACTool]:
        """The turn's tools: the knowledge search (if configured) and the handoff."""
        tools = [create_studio_handoff_tool(self.tac, session, attributes=HANDOFF_ATTRIBUTES)]
        knowledge_base = self.tac.config.knowledge_base_id
        if self._knowledge is None and self.tac.knowledge_client and knowledge_base:
            self._knowledge = await create_knowledge_tool(
                self.tac.knowledge_client,
                knowledge_base,
                name=KNOWLEDGE_TOOL,
                description="Search the store's help center (returns, delivery, opening "
                "hours). The input MUST be a question in the form of a string.",
                top_k=3,
            )
        if self._knowledge is not None:
            tools.insert(0, self._knowledge)
        return tools

    # -- offline -----------------------------------------------------------------------------

    async def answer(
        self, message: str, session: ConversationSession, memory: TACMemoryResponse | None
    ) -> str:
        """The offline agent's reply: greeting, knowledge, handoff, in the profile's language."""
        say = PHRASES[language_of(session)]
        tools = {tool.name: tool for tool in await self.tools(session)}
        if _HUMAN.search(message):
            result = await tools["handoff"](reason=HANDOFF_REASON)
            initiated = isinstance(result, dict) and result.get("status") == "handoff_initiated"
            return say["handoff" if initiated else "handoff_failed"]
        parts: list[str] = []
        greeting = bool(_GREETING.match(message))
        if greeting:
            name = _name(session)
            summaries = memory.summaries if isinstance(memory, TACMemoryResponse) else []
            if name and summaries:
                parts.append(say["welcome_back"].format(name=name, summary=summaries[0].content))
            elif name:
                parts.append(say["hello"].format(name=name))
            else:
                parts.append(say["hello_anonymous"])
        search = tools.get(KNOWLEDGE_TOOL)
        answer = None
        if search is not None and (not greeting or "?" in message):
            hits = await search(query=message)
            found = [hit["content"] for hit in hits if (hit.get("score") or 0) > _MIN_SCORE]
            answer = _best_paragraph("\n\n".join(found), message)
        if answer:
            parts.append(say["found"].format(answer=answer))
        elif greeting:
            parts.append(say["help"])
        else:
            parts.append(say["not_found"])
        return " ".join(parts)

    # -- with a model ------------------------------------------------------------------------

    async def _model_turn(
        self, message: str, session: ConversationSession, memory: TACMemoryResponse | None
    ) -> AsyncIterator[str]:
        from tac.adapters.openai import with_tac_memory

        client = with_tac_memory(self.openai_client, memory, session)
        tools = {tool.name: tool for tool in await self.tools(session)}
        history = self._history.setdefault(session.conversation_id, [])
        language = _contact(session).get("language")
        system = INSTRUCTIONS
        if isinstance(language, str) and language.strip():
            system += f" Always answer in the customer's language: {language.strip()}."
        turn: list[dict[str, Any]] = [{"role": "user", "content": message}]
        for _ in range(_MAX_TOOL_ROUNDS):
            stream = await client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": system}, *history, *turn],
                tools=[tool.to_openai_format() for tool in tools.values()],
                stream=True,
            )
            text: list[str] = []
            calls: dict[int, dict[str, str]] = {}
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    text.append(delta.content)
                    yield delta.content
                for call in delta.tool_calls or ():
                    slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = call.id or slot["id"]
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["arguments"] += call.function.arguments or ""
            if not calls:
                turn.append({"role": "assistant", "content": "".join(text)})
                break
            turn.append(
                {
                    "role": "assistant",
                    "content": "".join(text) or None,
                    "tool_calls": [
                        {
                            "id": slot["id"],
                            "type": "function",
                            "function": {"name": slot["name"], "arguments": slot["arguments"]},
                        }
                        for slot in calls.values()
                    ],
                }
            )
            for slot in calls.values():
                turn.append(
                    {
                        "role": "tool",
                        "tool_call_id": slot["id"],
                        "content": await _run_tool(tools, slot["name"], slot["arguments"]),
                    }
                )
        history.extend(turn)


async def _run_tool(tools: Mapping[str, TACTool], name: str, arguments: str) -> str:
    tool = tools.get(name)
    if tool is None:
        return json.dumps({"error": {"type": "unknown_tool", "message": f"no tool {name!r}"}})
    try:
        values = json.loads(arguments or "{}")
    except ValueError as exc:
        return json.dumps({"error": {"type": "validation_error", "message": str(exc)}})
    return json.dumps(await tool(**values) if isinstance(values, dict) else {})


def build_agent(env: Mapping[str, str]) -> Any:
    """The example agent on every channel; returns its ``TACFastAPIServer``.

    A real model answers when ``env`` has ``OPENAI_API_KEY`` (``OPENAI_BASE_URL`` and
    ``OPENAI_MODEL`` are read too); otherwise the offline agent does.
    """
    from tac.channels.chat import ChatChannel, ChatChannelConfig
    from tac.channels.rcs import RCSChannel, RCSChannelConfig
    from tac.channels.sms import SMSChannel, SMSChannelConfig
    from tac.channels.voice import VoiceChannel, VoiceChannelConfig
    from tac.channels.whatsapp import WhatsAppChannel, WhatsAppChannelConfig
    from tac.models.voice import VoiceTwiMLOptionsConversationRelay
    from tac.server import TACFastAPIServer, TACServerConfig

    tac = TAC(TACConfig.from_env(env))
    messaging = [
        SMSChannel(tac, config=SMSChannelConfig(memory_mode="always")),
        WhatsAppChannel(tac, config=WhatsAppChannelConfig(memory_mode="always")),
        RCSChannel(tac, config=RCSChannelConfig(memory_mode="always")),
        ChatChannel(tac, config=ChatChannelConfig(memory_mode="always")),
    ]
    # voice: memory once per call (a fast first token; traits as they were when the call began)
    voice = VoiceChannel(
        tac,
        config=VoiceChannelConfig(
            memory_mode="once",
            default_twiml_options=VoiceTwiMLOptionsConversationRelay(dtmf_detection=True),
        ),
    )
    client = None
    if env.get("OPENAI_API_KEY"):
        import openai

        client = openai.AsyncOpenAI(
            api_key=env["OPENAI_API_KEY"], base_url=env.get("OPENAI_BASE_URL") or None
        )
    agent = DemoAgent(tac, openai_client=client, model=env.get("OPENAI_MODEL") or DEFAULT_MODEL)
    tac.on_message_ready(agent)

    async def set_speech_language(conversation_id: str, code: str) -> None:
        await voice.set_language(conversation_id, tts=code, transcription=code)

    agent.set_speech_language = set_speech_language
    tac.on_conversation_ended(agent.forget)

    @tac.on_dtmf
    async def pressed(session: ConversationSession, digit: str) -> None:
        text = PHRASES[language_of(session)]["dtmf"].format(digit=digit)
        await voice.send_response(session.conversation_id, text)

    config = TACServerConfig.from_env(env)
    server = TACFastAPIServer(
        tac=tac, voice_channel=voice, messaging_channels=messaging, config=config
    )
    server.agent = agent  # type: ignore[attr-defined]
    return server
