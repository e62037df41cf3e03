"""``opentac demo``: the sandbox and an example agent, talking to each other.

Everything runs on this machine: the sandbox plays Twilio (Conversation Orchestrator, Memory,
Knowledge, Conversation Intelligence and a phone), the example agent is an ordinary TAC app,
and a simulated customer texts it, then calls it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

KNOWLEDGE_DIR = Path(__file__).with_name("_demo_knowledge")
CUSTOMER_NUMBER = "+15005550123"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the sandbox and an example agent and watch them talk",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep both running afterwards, to text the agent with `opentac sandbox chat`",
    )
    parser.set_defaults(handler=lambda args: asyncio.run(run_demo(serve=args.serve)))


def build_agent(env: Mapping[str, str]) -> Any:
    """The example agent: SMS and voice, memory, knowledge. Returns its TACFastAPIServer."""
    from tac import TAC, TACConfig
    from tac.channels.sms import SMSChannel, SMSChannelConfig
    from tac.channels.voice import VoiceChannel, VoiceChannelConfig
    from tac.models.session import ConversationSession
    from tac.models.tac import TACMemoryResponse
    from tac.server import TACFastAPIServer, TACServerConfig

    tac = TAC(TACConfig.from_env(env))
    sms = SMSChannel(tac, config=SMSChannelConfig(memory_mode="always"))
    voice = VoiceChannel(tac, config=VoiceChannelConfig(memory_mode="once"))
    knowledge_base = tac.config.knowledge_base_id

    async def answer(message: str, session: ConversationSession, memory: Any) -> str:
        parts: list[str] = []
        traits = session.profile.traits if session.profile else {}
        language = (traits.get("Contact") or {}).get("language")
        if language:
            parts.append(f"(I'll keep to {language}.)")
        if isinstance(memory, TACMemoryResponse) and memory.summaries:
            parts.append(f"Welcome back! Last time: {memory.summaries[0].content}")
        if tac.knowledge_client is not None and knowledge_base and "?" in message:
            chunks = await tac.knowledge_client.search_knowledge_base(
                knowledge_base, message, top_k=1
            )
            if chunks and (chunks[0].score or 0) > 0.2:
                parts.append(_best_paragraph(chunks[0].content, message))
        if not parts:
            parts.append("Got it, thanks! How can I help you today?")
        return " ".join(parts)

    @tac.on_message_ready
    async def on_message(message: str, session: ConversationSession, memory: Any) -> Any:
        reply = await answer(message, session, memory)
        if session.channel == "voice":
            return _stream_words(reply)  # voice: stream tokens as they are "generated"
        return reply

    config = TACServerConfig.from_env(env)
    return TACFastAPIServer(tac=tac, voice_channel=voice, messaging_channels=[sms], config=config)


def _best_paragraph(text: str, question: str) -> str:
    """The paragraph of a knowledge chunk that shares the most words with the question."""
    asked = {w.strip("?.,!").lower()[:5] for w in question.split() if len(w) > 3}
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip() and not p.startswith("#")]

    def overlap(paragraph: str) -> int:
        return len(asked & {w.strip("?.,!").lower()[:5] for w in paragraph.split()})

    best = max(paragraphs, key=overlap) if paragraphs else text
    return " ".join(best.split())


async def _stream_words(text: str) -> AsyncIterator[str]:
    words = text.split(" ")
    for index, word in enumerate(words):
        yield word if index == len(words) - 1 else word + " "


@contextlib.asynccontextmanager
async def _closing(sock: socket.socket) -> AsyncIterator[None]:
    try:
        yield
    finally:
        sock.close()  # serve_app closes it too; closing twice is harmless


def _listening_socket() -> socket.socket:
    """A loopback socket bound now and served later: its port is known before anything starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


async def run_demo(serve: bool = False, say: Callable[[str], None] = print) -> int:
    from tac.sandbox import Sandbox, serve_app

    listening = _listening_socket()
    app_url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    async with (
        _closing(listening),
        Sandbox.start(app_url=app_url, status_timeout_unit_seconds=1.0) as sandbox,
    ):
        await sandbox.client.request(
            "POST", "/sandbox/knowledge/load", json={"path": str(KNOWLEDGE_DIR)}
        )
        server = build_agent(sandbox.env)
        async with serve_app(server.app, sock=listening):
            say(f"sandbox (the local Twilio) at {sandbox.url}; example agent at {app_url}\n")
            await _texting(sandbox, say)
            await _calling(sandbox, say)
            left = await _settled_session_count(server.tac)
            say(f"\nsessions left open: {left}")
            if serve:
                say(
                    "\nStill running. Text the agent from another terminal:\n"
                    f"  opentac sandbox chat --channel sms --url {sandbox.url}\n"
                    "Ctrl-C to stop."
                )
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.Event().wait()
    return 0


async def _settled_session_count(tac: Any, within: float = 5.0) -> int:
    """Sessions still open once the last hang-up has been processed (it arrives a moment later)."""
    for _ in range(int(within / 0.05)):
        if not await tac.session_count():
            return 0
        await asyncio.sleep(0.05)
    return int(await tac.session_count())


async def _texting(sandbox: Any, say: Callable[[str], None]) -> None:
    say("── SMS ─────────────────────────────────────────────")
    customer = sandbox.customer("sms", CUSTOMER_NUMBER)
    for text in ("Hi! I'm Ana and I prefer email updates.", "What is your returns policy?"):
        say(f"customer: {text}")
        reply = await customer.ask(text, timeout=15)
        say(f"agent:    {reply.text}")
    profile_id = await _profile_of(sandbox, customer)
    say(f"(an operator sets Contact.language=spanish on {profile_id} with the twilio SDK)")
    await asyncio.to_thread(_set_language, sandbox, profile_id, "spanish")
    text = "Can you help me in my language?"
    say(f"customer: {text}")
    reply = await customer.ask(text, timeout=15)
    say(f"agent:    {reply.text}")
    await sandbox.client.request(
        "PUT",
        f"/conversations/v2/Conversations/{customer.conversation_id}",
        json={"status": "CLOSED"},
    )
    say("(the conversation closes; Conversation Intelligence writes its summary into Memory)")


async def _calling(sandbox: Any, say: Callable[[str], None]) -> None:
    say("── Voice ───────────────────────────────────────────")
    call = await sandbox.call(from_=CUSTOMER_NUMBER)
    text = "Hello, do you remember me?"
    say(f"caller:   {text}")
    reply = await call.ask(text, timeout=15)
    say(f"agent:    {reply.text}")
    await call.hang_up()
    say("(the caller hangs up; the session ends with the call)")


async def _profile_of(sandbox: Any, customer: Any) -> str:
    profiles = await sandbox.client.request("GET", "/sandbox/memory/profiles")
    for profile in profiles["profiles"]:
        if (profile.get("traits", {}).get("Contact") or {}).get("phone") == customer.address:
            return str(profile["id"])
    raise RuntimeError("the sandbox resolved no profile for the demo customer")


def _set_language(sandbox: Any, profile_id: str, language: str) -> None:
    from twilio.rest.memory.v1 import ProfileList

    client = sandbox.twilio_client()
    client.memory.v1.profiles(sandbox.identity.memory_store_id, profile_id).patch(
        profile_patch=ProfileList.ProfilePatch({"traits": {"Contact": {"language": language}}})
    )
