"""Ports for servers a test must name before they start (the sandbox needs the app's URL first).

Binding port 0 hands out a port from the kernel's ephemeral range, the range outgoing
connections take their local ports from; between choosing such a port and binding it again,
one of the test's own client connections may take it. Ports here come from below that range.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path


def _ephemeral_floor() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
    return low


def free_port() -> int:
    """A loopback port nothing listens on, outside the ephemeral range when there is room."""
    floor = _ephemeral_floor()
    low, high = (10000, floor - 1) if floor > 11000 else (1024, 65535)
    for _ in range(100):
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port found")
