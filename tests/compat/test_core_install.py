"""``pip install opentac`` (no extras) next to an unrelated project, tried for real.

One throwaway virtualenv per module holds opentac's core dependencies and pytest only (no
FastAPI, uvicorn, websockets or pytest-asyncio). Installing takes about a minute; everything
runs in subprocesses with timeouts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _run(
    *args: str | Path, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "VIRTUAL_ENV"))}
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("core-venv")
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    result = _run(python, "-m", "pip", "install", "-q", str(ROOT), "pytest", timeout=600)
    if result.returncode != 0:
        if "Could not find a version" in result.stderr or "NewConnectionError" in result.stderr:
            pytest.skip(f"PyPI unreachable: {result.stderr[-300:]}")
        pytest.fail(result.stderr[-2000:])
    found = _run(python, "-c", "import fastapi")
    assert found.returncode != 0, "the core install must not bring FastAPI"
    return folder


def _project(tmp_path: Path) -> Path:
    """An unrelated project whose own fixtures are named like opentac's."""
    (tmp_path / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture\ndef sandbox():\n    return 'mine'\n"
    )
    (tmp_path / "test_app.py").write_text(
        "def test_own_fixture(sandbox):\n    assert sandbox == 'mine'\n\n"
        "def test_plain():\n    assert 1 + 1 == 2\n"
    )
    return tmp_path


def test_pytest_in_an_unrelated_project_is_untouched(core_venv: Path, tmp_path: Path) -> None:
    project = _project(tmp_path)
    python = core_venv / "bin" / "python"
    result = _run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    plugins = _run(python, "-m", "pytest", "--trace-config", "-q", "--co", cwd=project)
    assert "tac.testing" not in plugins.stdout + plugins.stderr


def test_opting_in_without_the_extra_fails_only_the_tests_that_use_a_fixture(
    core_venv: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_app.py").write_text(
        "def test_uses_customer(customer):\n    pass\n\ndef test_plain():\n    assert True\n"
    )
    python = core_venv / "bin" / "python"
    result = _run(
        python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tac.testing.plugin",
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output  # one failed test, not a crash (3) or usage error (4)
    assert "1 passed" in output
    assert "pip install" in output


def test_cli_lists_commands_and_names_the_missing_extra(core_venv: Path) -> None:
    opentac = core_venv / "bin" / "opentac"
    shown = _run(opentac, "--help")
    assert shown.returncode == 0
    assert "sandbox" in shown.stdout
    assert "demo" in shown.stdout
    typo = _run(opentac, "foo")
    assert typo.returncode == 2
    assert "invalid choice: 'foo'" in typo.stderr
    assert "'sandbox'" in typo.stderr
    for command, extras in (("demo", "server,sandbox"), ("sandbox", "sandbox")):
        result = _run(opentac, command)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert f'pip install "opentac[{extras}]"' in result.stderr


def test_python_version_is_declared(core_venv: Path) -> None:
    """The running Python's minor version is among the classifiers (the ones we test)."""
    metadata = _run(core_venv / "bin" / "python", "-m", "pip", "show", "-v", "opentac")
    declared = f"Programming Language :: Python :: {sys.version_info[0]}.{sys.version_info[1]}"
    assert declared in metadata.stdout
