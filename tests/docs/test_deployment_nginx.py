"""docs/deployment.md's nginx configuration is valid for Debian's nginx (``nginx -t``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


@pytest.mark.skipif(
    shutil.which("nginx") is None or shutil.which("openssl") is None,
    reason="nginx or openssl not installed (scripts/ensure-services.sh installs nginx)",
)
def test_the_sample_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    found = re.search(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    assert found is not None
    cert, key = tmp_path / "agent.crt", tmp_path / "agent.key"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        [*openssl, "-subj", "/CN=agent.example.com", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    snippet = found.group(1)
    snippet = snippet.replace("/etc/ssl/agent.example.com.crt", str(cert))
    snippet = snippet.replace("/etc/ssl/agent.example.com.key", str(key))
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\n{snippet}}}\n"
    )
    check = ["nginx", "-t", "-q", "-e", str(tmp_path / "error.log"), "-p", str(tmp_path)]
    result = subprocess.run(
        [*check, "-c", str(conf)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
