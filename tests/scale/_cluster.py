"""Real parts for the scale-out tests: a private Redis, Debian's nginx and opentac processes.

Everything listens on loopback on free ports and lives in one temporary folder; nothing here
touches the Redis that the rest of the suite shares (these tests stop and restart theirs).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests._ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def have(program: str) -> bool:
    return shutil.which(program) is not None or Path(f"/usr/sbin/{program}").exists()


def _wait_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s:\n{_tail(log)}")


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-3000:]
    except OSError:
        return ""


def _spawn(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Redis:
    """A redis-server of our own, with an append-only file so that a restart keeps its data."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = self.folder / "redis.log"
        self.process = _spawn(
            [
                shutil.which("redis-server") or "redis-server",
                "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
                "--save", "", "--appendonly", "yes", "--appendfsync", "always",
                "--logfile", str(log),
            ],
            log,
        )  # fmt: skip
        _wait_port(self.port, self.process, log, 10)

    def kill(self) -> None:
        """Stop it hard (SIGKILL): what is in the append-only file comes back on ``start``."""
        _stop(self.process, signal.SIGKILL)
        self.process = None

    def stop(self) -> None:
        _stop(self.process)
        self.process = None


@dataclass
class Nginx:
    """Debian's nginx in front of the instances: round robin, as an operator would set it."""

    folder: Path
    upstreams: list[int]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        servers = "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in self.upstreams
        )
        prefix = self.folder
        return f"""
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log warn;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream opentac {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{self.port};
        client_max_body_size 1m;
        location / {{
            proxy_pass http://opentac;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_read_timeout 3600s;
            # An instance that refuses the connection, times out or answers 502/503 (draining,
            # store unreachable) is skipped; webhooks are idempotent, so POSTs may be retried.
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 2s;
        }}
    }}
}}
"""

    def start(self) -> None:
        conf = self.folder / "nginx.conf"
        conf.write_text(self.config())
        log = self.folder / "nginx.log"
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = _spawn([binary, "-p", str(self.folder), "-c", str(conf)], log)
        _wait_port(self.port, self.process, self.folder / "nginx-error.log", 10)

    def stop(self) -> None:
        _stop(self.process, signal.SIGQUIT)
        self.process = None


@dataclass
class Instance:
    """One opentac app process (``tests.scale._instance``)."""

    name: str
    folder: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / f"instance-{self.name}.log"

    def start(self) -> None:
        env = {
            **os.environ,
            **self.env,
            "TWILIO_SERVER_HOST": "127.0.0.1",
            "TWILIO_SERVER_PORT": str(self.port),
            "SCALE_INSTANCE": self.name,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        }
        self.process = _spawn([sys.executable, "-m", "tests.scale._instance"], self.log, env)
        _wait_port(self.port, self.process, self.log, 30)

    def kill(self) -> None:
        _stop(self.process, signal.SIGKILL)

    def stop(self) -> None:
        _stop(self.process)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None
