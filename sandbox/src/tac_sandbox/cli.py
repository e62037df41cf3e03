"""``opentac sandbox``: serve the local Twilio; ``opentac sandbox chat``: text the agent."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

DEFAULT_URL = "http://127.0.0.1:8100"


def register(subparsers: Any) -> None:
    """Add the ``sandbox`` command (and its ``chat`` subcommand) to the ``opentac`` CLI."""
    parser = subparsers.add_parser(
        "sandbox",
        help="run the local Twilio sandbox",
        description="Serve Twilio's APIs locally (Conversation Orchestrator, ...), send signed "
        "webhooks to your app, and print the environment your app needs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8100, help="port (0: any free port)")
    parser.add_argument(
        "--db", default="", help="SQLite file, or :memory: (default: per-user data folder)"
    )
    parser.add_argument(
        "--app-url",
        default="http://127.0.0.1:8000",
        help="where your TAC app listens (webhooks go to APP_URL/webhook)",
    )
    parser.add_argument("--public-url", default=None, help="how the app reaches the sandbox")
    parser.add_argument("--write-env", metavar="PATH", help="write the app's environment there")
    parser.add_argument(
        "--no-serve", action="store_true", help="print/write the environment and exit"
    )
    parser.add_argument(
        "--status-timeout-unit",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="seconds per Orchestrator status-timeout minute (tests: e.g. 0.01)",
    )
    parser.add_argument(
        "--webhook-attempts", type=int, default=5, metavar="N", help="tries per webhook"
    )
    parser.add_argument(
        "--webhook-base-delay",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="wait before the first redelivery (doubles each time)",
    )
    parser.add_argument(
        "--webhook-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long one delivery may take",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(handler=_serve)

    commands = parser.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    chat = commands.add_parser(
        "chat",
        help="text the running agent as a customer",
        description="A terminal chat with your agent through a running sandbox: each line you "
        "type is a customer's message; the agent's replies are printed.",
    )
    chat.add_argument("--channel", default="sms", choices=("sms", "whatsapp", "rcs", "chat"))
    chat.add_argument(
        "--url", default=None, help=f"sandbox URL (default $TWILIO_API_BASE_URL, {DEFAULT_URL})"
    )
    chat.add_argument("--address", default=None, help="the customer's address (default: random)")
    chat.add_argument(
        "--env-file",
        default=".env",
        help="file with the sandbox credentials (default .env, if present)",
    )
    chat.add_argument(
        "--reply-timeout", type=float, default=30.0, help="seconds to wait for the agent's reply"
    )
    chat.set_defaults(handler=_chat)


def _serve(args: argparse.Namespace) -> int:
    from tac_sandbox._db import MEMORY, Database, default_db_path
    from tac_sandbox._env import app_environment, render_env, write_env
    from tac_sandbox._settings import SandboxIdentity, SandboxSettings

    try:
        settings = SandboxSettings(
            host=args.host,
            port=args.port,
            db=args.db,
            app_url=args.app_url,
            public_url=args.public_url,
            status_timeout_unit_seconds=args.status_timeout_unit,
            webhook_attempts=args.webhook_attempts,
            webhook_base_delay_seconds=args.webhook_base_delay,
            webhook_timeout_seconds=args.webhook_timeout,
        )
    except ValidationError as exc:
        return _fail(_describe(exc))
    sock = None
    if not args.no_serve:
        from tac_sandbox._server import _bind

        try:
            sock = _bind(settings.host, settings.port)
        except OSError as exc:
            return _fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}")
        settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    database = Database(settings.db or (default_db_path() if settings.db == "" else MEMORY))
    identity = SandboxIdentity.load_or_create(database)
    env = app_environment(settings, identity)
    if args.write_env:
        write_env(args.write_env, env)
    if not args.quiet:
        where = settings.db or str(default_db_path())
        print(f"opentac sandbox: Twilio's APIs at {settings.base_url()} (database: {where})")
        if not args.no_serve:
            print(f"Console (conversations, calls, requests): {settings.base_url()}/console")
        print(f"Webhooks go to {settings.app_url.rstrip('/')}/webhook. Environment for the app:")
        if args.write_env:
            print(f"(written to {args.write_env})")
        print(render_env(env), end="", flush=True)
    if sock is None:
        database.close()
        return 0
    import uvicorn

    from tac_sandbox._app import create_app

    app = create_app(settings, database=database)
    config = uvicorn.Config(
        app,
        log_level="warning" if args.quiet else "info",
        access_log=not args.quiet,
        timeout_keep_alive=75,  # outlive clients' idle expiry: no reuse race
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _chat(args: argparse.Namespace) -> int:
    values = _read_env_file(args.env_file)
    values.update({k: v for k, v in os.environ.items() if k.startswith("TWILIO_")})
    url = args.url or values.get("TWILIO_API_BASE_URL") or DEFAULT_URL
    user = values.get("TWILIO_API_KEY") or values.get("TWILIO_ACCOUNT_SID")
    password = values.get("TWILIO_API_SECRET") or values.get("TWILIO_AUTH_TOKEN")
    if not user or not password:
        return _fail(
            "no sandbox credentials: set TWILIO_API_KEY and TWILIO_API_SECRET (or run in the "
            "folder of the .env written by `opentac sandbox --write-env .env`, or --env-file)"
        )
    try:
        return asyncio.run(_chat_loop(args, url, user, password))
    except KeyboardInterrupt:
        return 130


async def _chat_loop(args: argparse.Namespace, url: str, user: str, password: str) -> int:
    import httpx

    from tac_sandbox._client import SandboxClient, SandboxError
    from tac_sandbox.phone.customers import Customer

    async with SandboxClient(url, user, password) as client:
        try:
            await client.health()
        except httpx.HTTPError:
            return _fail(f"no sandbox answers at {url} (start one with `opentac sandbox`)")
        customer = Customer(client, args.channel, args.address)
        print(
            f"You are {customer.address} on {customer.channel} (sandbox {url}). "
            "Type a message; Ctrl-D to quit.",
            flush=True,
        )
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                print("you> ", end="", flush=True)
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return 0
            text = line.strip()
            if not text:
                continue
            try:
                await customer.send(text)
            except SandboxError as exc:
                print(f"(sandbox: {exc})", file=sys.stderr, flush=True)
                continue
            await _print_replies(customer, args.reply_timeout)


async def _print_replies(customer: Any, timeout: float) -> None:
    wait = timeout
    while True:
        try:
            reply = await customer.next_reply(timeout=wait)
        except TimeoutError:
            if wait == timeout:
                print(f"(no reply within {timeout:g}s)", flush=True)
            return
        print(f"agent> {reply.text}", flush=True)
        wait = 0.3


def _read_env_file(path: str) -> dict[str, str]:
    file = Path(path)
    if not file.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in file.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def _describe(exc: ValidationError) -> str:
    flags = {
        "status_timeout_unit_seconds": "--status-timeout-unit",
        "webhook_attempts": "--webhook-attempts",
        "webhook_base_delay_seconds": "--webhook-base-delay",
        "webhook_timeout_seconds": "--webhook-timeout",
    }
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "setting"
        flag = flags.get(name, "--" + name.replace("_", "-"))
        problems.append(f"{flag}: {error['msg']}")
    return "; ".join(problems)


def _fail(message: str) -> int:
    print(f"opentac sandbox: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """``opentac-sandbox``: the same command without the SDK installed."""
    parser = argparse.ArgumentParser(prog="opentac-sandbox")
    subparsers = parser.add_subparsers(dest="command", required=True)
    register(subparsers)
    args = parser.parse_args(["sandbox", *(sys.argv[1:] if argv is None else argv)])
    return int(args.handler(args) or 0)
