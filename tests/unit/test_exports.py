"""The public names code written for TAC imports (anchor-api §1.1, the seeds)."""

import importlib

import pytest

pytestmark = pytest.mark.unit

EXPECTED = {
    "tac": {
        "TAC",
        "TACConfig",
        "PartnerConnector",
        "get_logger",
        "mask_address",
        "mask_email",
        "mask_phone",
        "__version__",
    },
    "tac.core": {"TAC", "TACConfig", "get_logger"},
    "tac.context": {"KnowledgeClient", "MemoryClient"},
    "tac.models": {
        "ConversationSession",
        "TACMemoryResponse",
        "ProfileResponse",
        "ObservationInfo",
        "SummaryInfo",
        "Communication",
        "MemoryRetrievalRequest",
        "MemoryRetrievalResponse",
        "TACCommunication",
        "MemoryMode",
    },
    "tac.models.session": {"ConversationSession"},
    "tac.models.tac": {"TACMemoryResponse"},
    "tac.server": {
        "TACFastAPIServer",
        "TACServerConfig",
        "build_http_signature_dependency",
        "build_websocket_signature_dependency",
        "validate_twilio_webhook",
    },
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_public_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = {name for name in EXPECTED[module_name] if not hasattr(module, name)}
    assert not missing, f"{module_name} lacks {sorted(missing)}"
    exported = set(getattr(module, "__all__", ()))
    assert EXPECTED[module_name] - {"__version__"} <= exported | {"__version__"}


def test_all_lists_only_real_names() -> None:
    for module_name in EXPECTED:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"


def test_seed_import_lines() -> None:
    # Verbatim from seeds 001 and 003 (the parts this issue delivers).
    namespace: dict[str, object] = {}
    exec(
        "from tac import TAC, TACConfig\n"
        "from tac.models.session import ConversationSession\n"
        "from tac.models.tac import TACMemoryResponse\n",
        namespace,
    )
    assert namespace["TAC"].__name__ == "TAC"  # type: ignore[attr-defined]
