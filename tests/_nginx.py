"""Debian's nginx running the configuration documented in docs/deployment.md, on loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found is None and Path("/usr/sbin/nginx").exists():
        found = "/usr/sbin/nginx"
    return found


def documented_block() -> str:
    """The one ```nginx block of docs/deployment.md."""
    page = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"^```nginx\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    return block


def loopback_config(
    folder: Path, listen: int, upstreams: list[int], *, per_client_limits: bool = True
) -> str:
    """A whole nginx.conf: the documented block on plain HTTP at ``listen``, in front of
    ``upstreams`` on loopback, with every file nginx writes inside ``folder``."""
    lines = []
    for line in documented_block().splitlines():
        stripped = line.strip()
        if stripped.startswith("ssl_"):
            continue
        if not per_client_limits and stripped.startswith(("limit_conn", "limit_req")):
            continue
        if stripped.startswith("server 10.0.0."):
            if stripped.startswith("server 10.0.0.11:"):
                lines += [
                    re.sub(r"server \S+", f"server 127.0.0.1:{port}", line) for port in upstreams
                ]
            continue
        lines.append(line)
    block = re.sub(r"listen [^;]+;", f"listen 127.0.0.1:{listen};", "\n".join(lines))
    return f"""
worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
{block}
}}
"""


def check_config(folder: Path, conf: Path) -> None:
    binary = nginx_binary() or "nginx"
    check = subprocess.run(
        [binary, "-t", "-p", str(folder), "-c", str(conf)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
