"""``_voice_server`` on the reference SDK (2.5.0), for the side-by-side figures.

Run with the interpreter of ``.venv-reference`` (see ``bench_messaging``). The reference has no
``public_base_url``: it builds its URLs from ``voice_public_domain`` (no scheme), so its TwiML
says ``wss://``; the load generator connects to the plain loopback socket either way, and both
SDKs check signatures against the URL the load generator signs.
"""

from __future__ import annotations

import sys

from benchmarks._reference import require_reference
from benchmarks._voice_server import serve


def main() -> None:
    require_reference()
    port = int(sys.argv[1])
    serve(port, voice_public_domain=f"127.0.0.1:{port}")


if __name__ == "__main__":
    main()
