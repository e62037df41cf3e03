"""The public names of handoff and Conversation Intelligence (as the reference SDK exports them)."""

import importlib

import pytest

pytestmark = pytest.mark.unit

EXPECTED = {
    "tac.tools": {"build_handoff_payload", "create_studio_handoff_tool", "post_studio_handoff"},
    "tac.tools.handoff": {
        "DEFAULT_HANDOFF_TOOL_DESCRIPTION",
        "DEFAULT_HANDOFF_TOOL_NAME",
        "build_handoff_payload",
        "create_studio_handoff_tool",
        "post_studio_handoff",
        "studio_executions_url",
        "studio_voice_handoff_url",
    },
    "tac.intelligence": {
        "ConversationIntelligenceConfig",
        "OperatorProcessingResult",
        "OperatorResultProcessor",
    },
    "tac.models": {
        "CommunicationsRange",
        "ExecutionDetails",
        "HandoffPayload",
        "IntelligenceConfiguration",
        "Operator",
        "OperatorResultEvent",
        "TriggerDetails",
    },
    "tac.models.handoff": {"HandoffPayload", "PendingHandoffData"},
    "tac.models.intelligence": {
        "ClassificationResult",
        "ExtractionEntity",
        "ExtractionResult",
        "JSONResult",
        "OperatorResult",
        "TextGenerationResult",
    },
    "tac.testing": {"FakeModel", "UnconsumedModelSteps", "UnexpectedModelRequest"},
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_public_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert EXPECTED[module_name] <= set(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.__all__ names missing {name}"
