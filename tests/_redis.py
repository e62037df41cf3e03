"""The Redis that `make test` starts (scripts/ensure-services.sh), for tests that need one."""

from __future__ import annotations

import socket

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_listening() -> bool:
    """Whether something accepts connections on Redis's port on loopback."""
    try:
        socket.create_connection(("127.0.0.1", 6379), 0.2).close()
    except OSError:
        return False
    return True
