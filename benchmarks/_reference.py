"""The reference SDK (``twilio-agent-connect``) in its own virtualenv, for side-by-side runs.

Both distributions install the ``tac`` package, so the reference cannot share opentac's
virtualenv: ``make bench`` creates ``.venv-reference`` on first use.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_VERSION = "2.5.0"
REFERENCE_VENV = ROOT / ".venv-reference"


def reference_python() -> tuple[str | None, str]:
    """The reference SDK's interpreter (its virtualenv is created on first use), or why not."""
    python = REFERENCE_VENV / "bin" / "python"
    stamp = REFERENCE_VENV / f".installed-{REFERENCE_VERSION}"
    if stamp.exists():
        return str(python), ""
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(REFERENCE_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"twilio-agent-connect[server]=={REFERENCE_VERSION}",
            ],
            check=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not install twilio-agent-connect {REFERENCE_VERSION} ({exc})"
    stamp.write_text("ok")
    return str(python), ""


def python_path(*, opentac: bool = True) -> str:
    """``PYTHONPATH`` for a child process: the repository, then opentac's ``src`` unless the
    child runs the reference (whose own ``tac`` must not be shadowed), then what was set."""
    src = ROOT / "src"
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if not opentac:
        inherited = [p for p in inherited if Path(p).resolve() != src]
    return os.pathsep.join([*([str(src)] if opentac else []), str(ROOT), *inherited])


def require_reference() -> None:
    """Stop a reference run that would import opentac's ``tac`` instead (a wrong PYTHONPATH)."""
    from importlib import metadata

    try:
        metadata.version("twilio-agent-connect")
    except metadata.PackageNotFoundError:
        raise SystemExit("this interpreter does not have twilio-agent-connect installed") from None
    import tac

    if Path(tac.__file__).resolve().is_relative_to(ROOT / "src"):
        raise SystemExit(f"opentac's tac ({tac.__file__}) shadows the reference's")


def redirect_reference(base_url: str) -> None:
    """Point the reference SDK's product base URLs at ``base_url`` (``{base_url}/{product}``).

    Only its ``_build_base_url`` helper and the Studio executions URL change; every other line
    of it runs as published. (Its voice handoff URL stays ``https://webhooks.twilio.com/...``:
    the sandbox's phone routes ``*.twilio.com`` callbacks to the sandbox, as Twilio would.)
    """
    require_reference()
    import tac.tools.handoff
    from tac.context.base import BaseAPIClient

    base = base_url.rstrip("/")

    def build_base_url(product: str, region: str | None) -> str:
        return f"{base}/{product}"

    def studio_executions_url(flow_sid: str) -> str:
        return f"{base}/studio/v2/Flows/{flow_sid}/Executions"

    BaseAPIClient._build_base_url = staticmethod(build_base_url)  # type: ignore[method-assign]
    tac.tools.handoff.studio_executions_url = studio_executions_url
