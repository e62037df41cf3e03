import subprocess
import sys

import pytest

import tac

pytestmark = pytest.mark.unit


def test_version_flag_prints_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tac", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"opentac {tac.__version__}"


def test_import_tac_loads_no_server_dependencies() -> None:
    code = (
        "import sys, tac; "
        "heavy = [m for m in ('fastapi', 'uvicorn', 'redis', 'websockets') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
