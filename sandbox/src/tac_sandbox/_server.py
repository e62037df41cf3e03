"""Run a sandbox on a real loopback port: in-process (a task on the current event loop) or as
a subprocess (``python -m tac sandbox``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from tac_sandbox._app import create_app
from tac_sandbox._client import SandboxClient
from tac_sandbox._db import Database
from tac_sandbox._env import app_environment
from tac_sandbox._settings import SandboxIdentity, SandboxSettings
from tac_sandbox.phone.call import VoiceCall
from tac_sandbox.phone.caller import DEFAULT_FROM, Caller
from tac_sandbox.phone.customers import Customer

# Idle keep-alive connections outlive the clients' own idle expiry (httpx: 5 s), so a client
# never sends on a connection the server is closing at that moment.
KEEP_ALIVE_SECONDS = 75


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server for tests: leaves the host's signal handlers alone, stops at once."""

    _stop: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True
        if self._stop is not None:
            self._stop.set()

    async def main_loop(self) -> None:
        self._stop = asyncio.Event()
        if not self.should_exit:
            await self.on_tick(0)
            await self._stop.wait()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for listener in self.servers:
            listener.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for _ in range(1000):  # up to 5 s for responses in flight
            if not (self.server_state.connections or self.server_state.tasks):
                break
            await asyncio.sleep(0.005)
        await self.lifespan.shutdown()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio: TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@contextlib.asynccontextmanager
async def serve_app(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, sock: socket.socket | None = None
) -> AsyncIterator[str]:
    """Serve an ASGI app on the current event loop; yields its base URL (``port=0``: any port).

    ``sock``: a socket already bound (and kept) since its URL was handed out, so that nothing
    else can take the port in between; it is closed when serving ends.
    """
    async with _serve_socket(app, sock or _bind(host, port)) as url:
        yield url


@contextlib.asynccontextmanager
async def _serve_socket(app: Any, sock: socket.socket) -> AsyncIterator[str]:
    host, bound = sock.getsockname()[:2]
    server = _EmbeddedServer(
        uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="auto",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    )
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                error = task.exception() if not task.cancelled() else None
                raise RuntimeError(f"the server on {host}:{bound} did not start: {error!r}")
            await asyncio.sleep(0.005)
        display = f"[{host}]" if ":" in host else host
        yield f"http://{display}:{bound}"
    finally:
        server.stop()
        with contextlib.suppress(Exception, SystemExit):
            await task
        sock.close()


class Sandbox:
    """A running sandbox: its URL, identity, the environment for an app, a control client.

    ::

        async with Sandbox.start(app_url="http://127.0.0.1:8000") as sandbox:
            customer = sandbox.customer("sms")
            await customer.send("Hi")
    """

    def __init__(
        self,
        url: str,
        settings: SandboxSettings,
        identity: SandboxIdentity,
        app: Any | None = None,
    ) -> None:
        self.url = url
        self.settings = settings
        self.identity = identity
        self.app = app
        self.client = SandboxClient(url, identity.api_key, identity.api_secret)
        self._answered = 0

    @property
    def env(self) -> dict[str, str]:
        """Every variable a TAC app needs to run against this sandbox."""
        return app_environment(self.settings, self.identity)

    def customer(
        self,
        channel: str = "sms",
        address: str | None = None,
        *,
        name: str | None = None,
        participant_type: str = "CUSTOMER",
    ) -> Customer:
        """A simulated customer on ``sms``, ``whatsapp``, ``rcs`` or ``chat``.

        ``participant_type="UNKNOWN"`` makes the customer arrive unresolved (no profile).
        """
        return Customer(self.client, channel, address, name=name, participant_type=participant_type)

    def caller(
        self,
        *,
        from_: str = DEFAULT_FROM,
        to: str | None = None,
        app_url: str | None = None,
        **options: Any,
    ) -> Caller:
        """A phone in this process calling the app (``app_url``, default the sandbox's) over
        ConversationRelay, with this sandbox's credentials; Orchestrator conversations are
        created through the sandbox. ``options``: see :class:`~tac_sandbox.Caller`."""
        return Caller(
            app_url or self.settings.app_url,
            account_sid=self.identity.account_sid,
            auth_token=self.identity.auth_token,
            from_=from_,
            to=to or self.identity.phone_number,
            sandbox_url=self.url,
            sandbox_auth=(self.identity.api_key, self.identity.api_secret),
            **options,
        )

    async def call(
        self,
        *,
        from_: str | None = None,
        to: str | None = None,
        custom_parameters: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> VoiceCall:
        """Have the sandbox call the app; returns once ``setup`` was sent (``SandboxError``
        with the reason when the app fails the call)."""
        details = await self.client.place_call(
            from_=from_, to=to, custom_parameters=custom_parameters, params=params
        )
        return VoiceCall(self.client, details)

    async def answered_call(self, timeout: float = 10.0) -> VoiceCall:
        """The next outbound call (Calls API) the sandbox answered; ``TimeoutError`` if none."""
        result = await self.client.voice_calls(
            direction="outbound-api", after=self._answered, wait=timeout
        )
        if not result["calls"]:
            raise TimeoutError(f"the app placed no ConversationRelay call within {timeout}s")
        first: dict[str, Any] = result["calls"][0]
        self._answered = int(first["seq"])
        return VoiceCall(self.client, first)

    def twilio_client(self) -> Any:
        """The official ``twilio`` REST client, pointed at this sandbox."""
        from twilio.rest import Client

        from tac_sandbox._twilio import twilio_http_client

        return Client(
            self.identity.api_key,
            self.identity.api_secret,
            self.identity.account_sid,
            http_client=twilio_http_client(self.url),
        )

    async def set_app_url(self, url: str) -> None:
        """Point the sandbox at an app started after it (webhooks to ``url``/webhook)."""
        await self.client.set_app_url(url)
        self.settings = self.settings.model_copy(update={"app_url": url.rstrip("/")})

    async def reset(self) -> None:
        """Forget conversations, webhook deliveries and faults; keep the identity."""
        await self.client.reset()

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls,
        settings: SandboxSettings | None = None,
        *,
        subprocess: bool = False,
        products: Iterable[str] | None = None,
        startup_timeout: float = 20.0,
        **overrides: Any,
    ) -> AsyncIterator[Sandbox]:
        """Start a sandbox on loopback; stop it on exit.

        ``settings`` defaults to an in-memory database on a free port; keyword ``overrides``
        replace single settings (``app_url=...``, ``status_timeout_unit_seconds=...``).
        ``subprocess=True`` runs ``python -m tac sandbox`` instead of a task on this loop.
        """
        base = settings or SandboxSettings(db=":memory:", port=0)
        merged = SandboxSettings.model_validate({**base.model_dump(), **overrides})
        runner = _start_subprocess if subprocess else _start_in_process
        async with runner(merged, products, startup_timeout) as sandbox:
            try:
                yield sandbox
            finally:
                await sandbox.client.aclose()


@contextlib.asynccontextmanager
async def _start_in_process(
    settings: SandboxSettings, products: Iterable[str] | None, startup_timeout: float
) -> AsyncIterator[Sandbox]:
    sock = _bind(settings.host, settings.port)
    settings = settings.model_copy(update={"port": sock.getsockname()[1]})
    try:
        app = create_app(settings, products=products)
    except BaseException:
        sock.close()
        raise
    identity: SandboxIdentity = app.state.sandbox.identity
    async with _serve_socket(app, sock):
        local = settings.model_copy(update={"public_url": None}).base_url()
        yield Sandbox(local, settings, identity, app)


@contextlib.asynccontextmanager
async def _start_subprocess(
    settings: SandboxSettings, products: Iterable[str] | None, startup_timeout: float
) -> AsyncIterator[Sandbox]:
    if products is not None:
        raise ValueError("products can only be chosen for an in-process sandbox")
    with tempfile.TemporaryDirectory(prefix="opentac-sandbox-") as folder:
        db_path = settings.db if settings.db not in ("", ":memory:") else f"{folder}/sandbox.db"
        database = Database(db_path)
        identity = SandboxIdentity.load_or_create(database)
        database.close()
        probe = _bind(settings.host, settings.port)
        port = probe.getsockname()[1]
        probe.close()
        settings = settings.model_copy(update={"port": port, "db": db_path})
        log_path = Path(folder) / "sandbox.log"
        command = [
            sys.executable, "-m", "tac", "sandbox",
            "--host", settings.host,
            "--port", str(port),
            "--db", db_path,
            "--app-url", settings.app_url,
            "--status-timeout-unit", str(settings.status_timeout_unit_seconds),
            "--webhook-attempts", str(settings.webhook_attempts),
            "--webhook-base-delay", str(settings.webhook_base_delay_seconds),
            "--webhook-timeout", str(settings.webhook_timeout_seconds),
            "--quiet",
        ]  # fmt: skip
        if settings.public_url:
            command += ["--public-url", settings.public_url]
        process = await asyncio.to_thread(_spawn, command, log_path)
        try:
            url = settings.model_copy(update={"public_url": None}).base_url()
            await _wait_healthy(url, process, startup_timeout, log_path)
            yield Sandbox(url, settings, identity)
        finally:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)


def _spawn(command: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-2000:]


async def _wait_healthy(
    url: str, process: subprocess.Popen[bytes], timeout: float, log_path: Path
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=1.0) as http:
        while True:
            if process.poll() is not None:
                output = await asyncio.to_thread(_tail, log_path)
                raise RuntimeError(f"the sandbox exited with {process.returncode}:\n{output}")
            try:
                response = await http.get(f"{url}/sandbox/health")
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if loop.time() > deadline:
                raise RuntimeError(f"the sandbox at {url} was not healthy within {timeout}s")
            await asyncio.sleep(0.05)
