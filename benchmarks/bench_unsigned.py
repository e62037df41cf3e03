"""Work an unauthenticated request costs the server: CPU per request, by shape.

The app (voice + messaging, ``TACFastAPIServer.start()``) runs in its own process; a client
sends it requests that are not signed by Twilio (no signature, or one of the right shape but
wrong) and the server process's CPU time (``/proc/<pid>/stat``) is divided by their number.
``python -m benchmarks bench_unsigned``; ``OPENTAC_BENCH_SRC=/path/to/src`` measures another
checkout (e.g. the code before the request guard) with the same client.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = int(os.environ.get("OPENTAC_BENCH_UNSIGNED_REQUESTS", "200"))
WRONG = "A" * 27 + "="  # the shape of a signature, not a valid one

SERVER = """
import sys
from tac import TAC, TACConfig
from tac.channels.sms import SMSChannel
from tac.channels.voice import VoiceChannel
from tac.server import TACFastAPIServer, TACServerConfig

port = int(sys.argv[1])
tac = TAC(TACConfig(
    account_sid="AC" + "0" * 32, auth_token="token", api_key="SKx", api_secret="s",
    phone_number="+15005550006", conversation_configuration_id="conv_configuration_x",
    public_base_url=f"http://127.0.0.1:{port}", log_level="ERROR",
))
server = TACFastAPIServer(
    tac, voice_channel=VoiceChannel(tac), messaging_channels=[SMSChannel(tac)],
    config=TACServerConfig(host="127.0.0.1", port=port),
)
server.start()
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _shapes() -> list[tuple[str, str, bytes, dict[str, str]]]:
    mib = 1 << 20
    json_body = b'{"eventType":"COMMUNICATION_CREATED","pad":"' + b"x" * (mib - 60) + b'"}'
    escaped = b"a=" + b"%41" * ((mib - 10) // 3)  # percent-escapes: the costliest form to parse
    small_escaped = b"a=" + b"%41" * ((16_000 - 10) // 3)  # the same, under the form cap
    as_json = {"Content-Type": "application/json"}
    as_form = {"Content-Type": "application/x-www-form-urlencoded"}
    wrong = {"X-Twilio-Signature": WRONG}
    return [
        ("JSON 1 MiB, no signature", "/webhook", json_body, as_json),
        ("JSON 1 MiB, wrong signature", "/webhook", json_body, {**as_json, **wrong}),
        ("form 1 MiB, no signature", "/twiml", escaped, as_form),
        ("form 1 MiB, wrong signature", "/twiml", escaped, {**as_form, **wrong}),
        ("form 16 KB, wrong signature", "/twiml", small_escaped, {**as_form, **wrong}),
    ]


def measure(src: Path) -> list[tuple[str, int, float]]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(src)}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.get("/nowhere")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            for label, path, body, headers in _shapes():
                status = 0
                before = _cpu_seconds(process.pid)
                for _ in range(REQUESTS):
                    status = client.post(path, content=body, headers=headers).status_code
                spent = _cpu_seconds(process.pid) - before
                rows.append((label, status, spent / REQUESTS * 1000))
    finally:
        process.terminate()
        process.wait(10)
    return rows


def run() -> str:
    src = Path(os.environ.get("OPENTAC_BENCH_SRC", ROOT / "src"))
    rows = measure(src)
    lines = [
        "## Unauthenticated requests",
        "",
        f"Server CPU per request not signed by Twilio ({REQUESTS} each, sequential, one "
        "keep-alive connection; the server alone in its process, its CPU time from /proc).",
        "",
        "| request | answer | server CPU per request |",
        "|---|---|---|",
    ]
    lines += [f"| {label} | {status} | {ms:.2f} ms |" for label, status, ms in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
