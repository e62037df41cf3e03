"""The seed harness: the seeds' snippets run as tests, unchanged.

``snippets/`` holds the seeds' snippets transcribed verbatim (whitespace normalised by
``ruff format``), one module each. A snippet leaves some names undefined: the harness supplies
them (:func:`namespace`): the names a reader of the page would import (``TAC``,
``ConversationSession``, ...), the app's own functions (``your_llm``, ``generate_response``,
``cancel_pending_operations``, ``conversation_history``) and, for snippets that start after
the setup, ``tac``. Snippets run with :func:`run` (top-level ``await`` allowed), in one shared
namespace, in the order given.

Servers run in a subprocess (``python tests/seeds/seed_harness.py SNIPPET... [--register NAME]
[--serve CHANNEL...]``) with the environment ``opentac sandbox --write-env`` wrote; see
:func:`write_env` and :func:`start_app`.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import inspect
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SNIPPETS = Path(__file__).resolve().parent / "snippets"
ROOT = Path(__file__).resolve().parents[2]


# -- what the snippets leave undefined ---------------------------------------------------------


async def your_llm(message: str, memory: Any = None) -> str:
    """The app's LLM: answers deterministically, saying whether memory came along."""
    kind = "none" if memory is None else type(memory).__name__
    return f"llm: {message} [memory: {kind}]"


async def generate_response(message: str, max_tokens: int | None = None) -> str:
    """The app's response generator."""
    limit = f" [max_tokens={max_tokens}]" if max_tokens is not None else ""
    return f"generated: {message}{limit}"


CANCELLED: list[str] = []


async def cancel_pending_operations(conversation_id: str) -> None:
    """The app's cancellation hook (records what it was asked to cancel)."""
    CANCELLED.append(conversation_id)


def namespace(**extra: Any) -> dict[str, Any]:
    """The globals a snippet runs in: the page's imports and the app's own names."""
    from tac import TAC, TACConfig
    from tac.channels import (
        ChatChannel,
        ChatChannelConfig,
        RCSChannel,
        RCSChannelConfig,
        SMSChannel,
        SMSChannelConfig,
        WhatsAppChannel,
        WhatsAppChannelConfig,
    )
    from tac.models.session import ConversationSession
    from tac.models.tac import TACMemoryResponse
    from tac.server import TACFastAPIServer

    names: dict[str, Any] = {
        "__name__": "__seed__",
        "TAC": TAC,
        "TACConfig": TACConfig,
        "SMSChannel": SMSChannel,
        "SMSChannelConfig": SMSChannelConfig,
        "WhatsAppChannel": WhatsAppChannel,
        "WhatsAppChannelConfig": WhatsAppChannelConfig,
        "RCSChannel": RCSChannel,
        "RCSChannelConfig": RCSChannelConfig,
        "ChatChannel": ChatChannel,
        "ChatChannelConfig": ChatChannelConfig,
        "ConversationSession": ConversationSession,
        "TACMemoryResponse": TACMemoryResponse,
        "TACFastAPIServer": TACFastAPIServer,
        "your_llm": your_llm,
        "generate_response": generate_response,
        "cancel_pending_operations": cancel_pending_operations,
        "conversation_history": {},
    }
    try:
        from tac.channels.voice import VoiceChannel, VoiceChannelConfig
    except ImportError:  # voice lands from its own branch
        pass
    else:
        names["VoiceChannel"] = VoiceChannel
        names["VoiceChannelConfig"] = VoiceChannelConfig
    names.update(extra)
    return names


def source(name: str) -> str:
    return (SNIPPETS / f"{name}.py").read_text(encoding="utf-8")


def run(name: str, names: dict[str, Any]) -> dict[str, Any]:
    """Run a snippet synchronously in ``names`` (it must not use top-level ``await``)."""
    code = compile(source(name), str(SNIPPETS / f"{name}.py"), "exec")
    exec(code, names)
    return names


async def run_async(name: str, names: dict[str, Any]) -> dict[str, Any]:
    """Run a snippet that may ``await`` at top level, in ``names``."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    code = compile(source(name), str(SNIPPETS / f"{name}.py"), "exec", flags=flags)
    result = eval(code, names)
    if inspect.isawaitable(result):
        await result
    return names


# -- servers in a subprocess ----------------------------------------------------------------------


def free_port() -> int:
    """A free loopback port outside the ephemeral range (see tests/_ports.py)."""
    from tests._ports import free_port as pick

    return pick()


def write_env(db: Path, app_url: str, sandbox_port: int, path: Path) -> dict[str, str]:
    """Run ``opentac sandbox --write-env`` for the sandbox on ``db``; return the variables."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tac",
            "sandbox",
            "--no-serve",
            "--quiet",
            "--db",
            str(db),
            "--port",
            str(sandbox_port),
            "--app-url",
            app_url,
            "--write-env",
            str(path),
        ],
        check=True,
        env=_child_env({}),
    )
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key] = value
    return env


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


@contextmanager
def start_app(
    snippets: list[str],
    env: dict[str, str],
    *,
    register: str | None = None,
    serve: list[str] | None = None,
    provide_tac: bool = False,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run snippets as an app in a subprocess; stop it on exit."""
    command = [sys.executable, str(Path(__file__).resolve()), *snippets]
    if register:
        command += ["--register", register]
    if serve:
        command += ["--serve", *serve]
    if provide_tac:
        command.append("--provide-tac")
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        command, env=_child_env(env), stdout=output, stderr=subprocess.STDOUT
    )
    try:
        port = int(env["TWILIO_SERVER_PORT"])
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                detail = log.read_text(errors="replace")[-3000:] if log else ""
                raise RuntimeError(f"the app exited with {process.returncode}\n{detail}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the app did not listen within 30 s") from None
                time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log and not isinstance(output, int):
            output.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run seed snippets as an app.")
    parser.add_argument("snippets", nargs="+")
    parser.add_argument("--register", help="register this function with tac.on_message_ready")
    parser.add_argument("--serve", nargs="*", help="serve these channels with TACFastAPIServer")
    parser.add_argument("--provide-tac", action="store_true", help="define tac from the env")
    args = parser.parse_args(argv)
    names = namespace()
    if args.provide_tac:
        names["tac"] = names["TAC"](config=names["TACConfig"].from_env())
    for snippet in args.snippets:
        run(snippet, names)
    if args.register:
        names["tac"].on_message_ready(names[args.register])
    if args.serve is not None:
        channels = [names[channel] for channel in args.serve]
        names["TACFastAPIServer"](tac=names["tac"], messaging_channels=channels).start()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    asyncio.set_event_loop_policy(None)
    main()
