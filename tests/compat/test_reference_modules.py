"""Every public module of the reference wheel (``twilio-agent-connect`` 2.5.0) imports on opentac,
with the names its ``__all__`` lists.

The wheel is fetched once with ``pip download --no-deps`` into a cache folder and only read (its
file list and its modules' ``__all__``, parsed, never imported): both distributions own the
``tac`` package, so the reference is never installed next to opentac.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REFERENCE = "twilio-agent-connect==2.5.0"
# Speech-to-speech over Media Streams: checked like the others once present.
NOT_YET = ("tac.channels.voice.media_streams", "tac.models.stream")


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "opentac-tests" / "reference-wheel"


@pytest.fixture(scope="module")
def wheel() -> zipfile.ZipFile:
    folder = _cache()
    found = sorted(folder.glob("twilio_agent_connect-2.5.0-*.whl"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "-q",
                    "-d",
                    str(folder),
                    REFERENCE,
                ],
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"PyPI unreachable: pip download {REFERENCE} timed out")
        found = sorted(folder.glob("twilio_agent_connect-2.5.0-*.whl"))
        if not found:
            pytest.skip(
                f"PyPI unreachable: pip download {REFERENCE} failed: {result.stderr[-300:]}"
            )
    return zipfile.ZipFile(found[-1])


def _public_modules(archive: zipfile.ZipFile) -> dict[str, str]:
    """module name -> its source, for every public ``tac`` module of the wheel."""
    modules: dict[str, str] = {}
    for name in archive.namelist():
        if not name.startswith("tac/") or not name.endswith(".py"):
            continue
        parts = name.removesuffix(".py").split("/")
        if parts[-1] == "__init__":
            parts.pop()
        if any(part.startswith("_") for part in parts):
            continue
        modules[".".join(parts)] = archive.read(name).decode("utf-8")
    return modules


def _declared_names(source: str) -> list[str]:
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                value = ast.literal_eval(node.value) if node.value is not None else []
                return [str(item) for item in value]
    return []


def test_every_public_reference_module_imports_with_its_names(wheel: zipfile.ZipFile) -> None:
    modules = _public_modules(wheel)
    assert len(modules) > 60, sorted(modules)  # the wheel was read
    missing: list[str] = []
    for name, source in sorted(modules.items()):
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            if not name.startswith(NOT_YET):
                missing.append(f"{name}: {exc}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            absent = [attr for attr in _declared_names(source) if not hasattr(module, attr)]
        if absent:
            missing.append(f"{name}: no {', '.join(absent)}")
    assert missing == []


def test_partner_connectors_names_import() -> None:
    """What the reference's partner packages (AWS, Microsoft) import from ``tac``."""
    from tac.session import ThreadSafeSessionManager

    with pytest.warns(DeprecationWarning, match="VoiceTwiMLOptionsConversationRelay"):
        from tac.models.voice import TwiMLOptions
    from tac.models.voice import VoiceTwiMLOptionsConversationRelay

    assert TwiMLOptions is VoiceTwiMLOptionsConversationRelay
    manager = ThreadSafeSessionManager()
    state = manager.get_or_create_session("CA1")
    assert manager.get_or_create_session("CA1") is state
    assert manager.get_all_session_ids() == ["CA1"]
    assert len(manager) == 1
    manager.remove_session("CA1")
    manager.remove_session("CA1")
    assert not manager.has_session("CA1")
    assert len(manager) == 0


def test_inert_session_cache_attributes_warn_and_keep_a_value() -> None:
    from tac.models.session import Channel, ConversationSession

    session = ConversationSession(conversation_id="conv_1", channel=Channel.SMS)
    with pytest.warns(DeprecationWarning, match="cached_memory has no effect") as caught:
        assert session.cached_memory is None
    assert caught[0].filename == __file__  # points at the caller's line
    with pytest.warns(DeprecationWarning, match="cache_lock has no effect"):
        assert session.cache_lock is session.cache_lock


def test_compat_builders_write_the_channel_twiml() -> None:
    from tac.channels.voice.conversation_relay.twiml import TwiMLBuilderConversationRelay
    from tac.channels.voice.twiml import TwiMLBuilderBase

    assert issubclass(TwiMLBuilderConversationRelay, TwiMLBuilderBase)
    assert TwiMLBuilderConversationRelay.__module__ == "tac._compat.twiml"


def test_one_mask_address_with_the_references_empty_semantics() -> None:
    import tac
    import tac.core.logging as core_logging
    import tac.utils

    assert tac.mask_address is tac.utils.mask_address is core_logging.mask_address
    assert tac.utils.mask_phone is core_logging.mask_phone
    for mask in (core_logging.mask_address, core_logging.mask_phone, core_logging.mask_email):
        assert mask(None) == "***"
        assert mask("") == "***"
        assert mask("   ") == "***"


def test_every_sdk_error_is_a_tac_error_and_keeps_its_builtin_base() -> None:
    from tac.channels.voice.conversation_relay._protocol import (
        RelayProtocolError,
        RelayStateError,
    )
    from tac.channels.voice.conversation_relay.provider import CallNotConnectedError
    from tac.channels.websocket_protocol import WebSocketDisconnectError
    from tac.context import TACError, TwilioAPIError
    from tac.core.errors import TACConfigError
    from tac.intelligence import InvalidOperatorEventError
    from tac.models.conversation import WebhookPayloadError
    from tac.tools._schema import SchemaNotStrictError
    from tac.tools.handoff import HandoffError

    kept = {
        TACConfigError: (ValueError, KeyError),
        HandoffError: (RuntimeError,),
        RelayProtocolError: (ValueError,),
        RelayStateError: (RuntimeError,),
        CallNotConnectedError: (LookupError,),
        WebhookPayloadError: (ValueError,),
        InvalidOperatorEventError: (ValueError,),
        SchemaNotStrictError: (ValueError,),
        WebSocketDisconnectError: (),
        TwilioAPIError: (),
    }
    for error, builtins in kept.items():
        assert issubclass(error, TACError), error
        for builtin in builtins:
            assert issubclass(error, builtin), (error, builtin)
    with pytest.raises(TACError, match="TWILIO_X: missing"):
        raise TACConfigError("TWILIO_X", "missing")
