"""The sandbox is its own distribution: pinned by opentac's extras, re-exported as tac.sandbox."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

import tac.sandbox
import tac_sandbox
from tac._version import __version__ as opentac_version
from tac_sandbox._version import __version__ as sandbox_version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]


def test_opentac_extras_pin_the_sandbox_of_the_same_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sandbox_version == opentac_version
    assert project["optional-dependencies"]["sandbox"] == [f"opentac-sandbox=={sandbox_version}"]
    assert "sandbox" in project["optional-dependencies"]["testing"][0]
    sandbox_project = tomllib.loads((ROOT / "sandbox" / "pyproject.toml").read_text())["project"]
    assert sandbox_project["name"] == "opentac-sandbox"
    assert not any(dep.startswith("opentac") for dep in sandbox_project["dependencies"])


def test_tac_sandbox_re_exports_every_public_name() -> None:
    for name in tac.sandbox.__all__:
        assert getattr(tac.sandbox, name) is getattr(tac_sandbox, name)
    assert set(tac.sandbox.__all__) <= set(tac_sandbox.__all__)


def test_without_the_sandbox_installed_both_entries_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "tac_sandbox", None)
    monkeypatch.setitem(sys.modules, "tac_sandbox.cli", None)
    monkeypatch.delitem(tac.sandbox.__dict__, "Sandbox", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"opentac\[sandbox\]"):
        _ = tac.sandbox.Sandbox

    from tac.sandbox._cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sandbox"])
    assert args.handler(args) == 2
    assert 'pip install "opentac[sandbox]"' in capsys.readouterr().err
