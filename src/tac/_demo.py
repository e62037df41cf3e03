"""``opentac demo``: the sandbox, an example agent and a web console, on this machine.

Nothing leaves the machine: the sandbox plays Twilio (Conversation Orchestrator, Memory,
Knowledge, Studio, Conversation Intelligence and a phone), the example agent
(:mod:`tac._demo_agent`) is an ordinary TAC app, and the sandbox's web console lets you text
and call the agent, edit the customer's memory and watch handoffs arrive. ``--script`` plays a
scripted conversation in the terminal instead, and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from tac._demo_agent import build_agent

__all__ = ["build_agent", "run_console", "run_demo"]

KNOWLEDGE_DIR = Path(__file__).with_name("_demo_knowledge")
CUSTOMER_NUMBER = "+15005550123"
CONSOLE_PORT = 8100  # the sandbox's usual port: the console's address stays the same
CUSTOMER_NAME = "Ana"
CUSTOMER_EMAIL = "ana@example.com"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the sandbox, an example agent and a web console to try them in",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--script",
        action="store_true",
        help="play a scripted conversation in the terminal and exit (for CI and terminals)",
    )
    mode.add_argument(
        "--serve",
        action="store_true",
        help="after the scripted conversation, keep everything running (with the console)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"the sandbox's port, where the console is (default {CONSOLE_PORT} if free; 0: any)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.script:
        return asyncio.run(run_demo(env=env))
    port = args.port if args.port is not None else _free_or_any(CONSOLE_PORT)
    return asyncio.run(run_console(port=port, scripted=args.serve, env=env))


def _free_or_any(port: int) -> int:
    """``port`` if nothing listens there now, else 0 (any free port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


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


def agent_environment(sandbox_env: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """The agent's environment: the sandbox's, plus the model settings found in ``env``."""
    model = {k: v for k, v in env.items() if k in _MODEL_VARIABLES and v}
    return {**sandbox_env, **model}


_MODEL_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL")


@contextlib.asynccontextmanager
async def demo_stack(
    *, port: int = 0, env: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[Any, Any]]:
    """The sandbox (knowledge loaded, the demo customer's profile made) and the example agent
    serving on loopback; yields ``(sandbox, agent_server)`` and stops both on exit."""
    from tac.sandbox import Sandbox, serve_app

    listening = _listening_socket()
    app_url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    async with (
        _closing(listening),
        Sandbox.start(app_url=app_url, port=port, status_timeout_unit_seconds=1.0) as sandbox,
    ):
        await sandbox.client.request(
            "POST", "/sandbox/knowledge/load", json={"path": str(KNOWLEDGE_DIR)}
        )
        await _create_customer_profile(sandbox)
        server = build_agent(agent_environment(sandbox.env, env or {}))
        async with serve_app(server.app, sock=listening):
            yield sandbox, server


async def _create_customer_profile(sandbox: Any) -> None:
    """The demo customer, known on every channel: phone (SMS, WhatsApp, RCS, voice), email
    (Chat) and name."""
    store = sandbox.identity.memory_store_id
    traits = {"Contact": {"name": CUSTOMER_NAME, "phone": CUSTOMER_NUMBER, "email": CUSTOMER_EMAIL}}
    await sandbox.client.request(
        "POST", f"/memory/v1/Stores/{store}/Profiles", json={"traits": traits}
    )


async def run_demo(
    serve: bool = False,
    say: Callable[[str], None] = print,
    env: Mapping[str, str] | None = None,
) -> int:
    """The scripted conversation (``opentac demo --script``); ``serve``: keep running after it,
    with the console, until Ctrl-C."""
    if serve:
        return await run_console(scripted=True, say=say, env=env)
    async with demo_stack(env=env) as (sandbox, server):
        say(f"sandbox (the local Twilio) at {sandbox.url}; example agent at {server_url(server)}\n")
        await _texting(sandbox, say)
        await _calling(sandbox, say)
        left = await _settled_session_count(server.tac)
        say(f"\nsessions left open: {left}")
    return 0


def server_url(server: Any) -> str:
    config = server.tac.config
    return str(config.public_base_url or "").rstrip("/")


async def run_console(
    *,
    port: int = 0,
    scripted: bool = False,
    say: Callable[[str], None] = print,
    env: Mapping[str, str] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """``make demo``: everything running, the console's URL printed, until Ctrl-C (or
    ``stop``), which stops everything cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        async with demo_stack(port=port, env=env) as (sandbox, server):
            model = "a real model" if server.agent.openai_client is not None else "offline"
            if scripted:
                await _texting(sandbox, say)
                await _calling(sandbox, say)
            chat = shlex.join(
                ["opentac", "sandbox", "chat", "--channel", "sms", "--url", sandbox.url]
            )
            say(
                f"opentac demo: the sandbox (the local Twilio), the example agent ({model}) and "
                "the console are running.\n"
                f"\n  Console:  {sandbox.url}/console\n\n"
                "Or text the agent from another terminal:\n"
                f"  TWILIO_API_KEY={sandbox.identity.api_key} "
                f"TWILIO_API_SECRET={sandbox.identity.api_secret} {chat}\n"
                "\nCtrl-C stops everything."
            )
            await stop.wait()
            say("\nstopping...")
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
    say("stopped.")
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
    for text in ("Hi! I prefer email updates.", "What is your returns policy?"):
        say(f"customer: {text}")
        reply = await customer.ask(text, timeout=15)
        say(f"agent:    {reply.text}")
    profile_id = await _profile_of(sandbox, customer)
    say(f"(an operator sets Contact.language=spanish on {profile_id} with the twilio SDK)")
    await asyncio.to_thread(_set_language, sandbox, profile_id, "spanish")
    text = "How long does delivery take?"
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
    details = await call.hang_up()
    for line in details["transcript"]:
        if line["kind"] == "language":
            say(f"(the agent switched the call's speech: {line['text']})")
    say("(the caller hangs up; the session ends with the call)")
    say("── WhatsApp ────────────────────────────────────────")
    customer = sandbox.customer("whatsapp", f"whatsapp:{CUSTOMER_NUMBER}")
    text = "Can I talk to a human, please?"
    say(f"customer: {text}")
    reply = await customer.ask(text, timeout=15)
    say(f"agent:    {reply.text}")
    tasks = await sandbox.client.request(
        "GET", "/sandbox/flex/tasks", params={"conversationId": customer.conversation_id}
    )
    for task in tasks["tasks"]:
        say(
            f"(Flex: a task for {task['customer']['address']}, reason {task['reason']!r}, "
            f"{len(task['history'])} messages of history)"
        )


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
