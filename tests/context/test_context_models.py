"""Knowledge, Studio and Calls wire models; logging of the transport."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from tac.context import TwilioHTTP
from tac.models.calls import CallResource
from tac.models.knowledge import (
    Knowledge,
    KnowledgeBase,
    KnowledgeChunkResult,
    KnowledgeSearchRequest,
)
from tac.models.studio import ExecutionResponse

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data"


def data(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def test_call_resource_parses_rfc2822_dates_and_ignores_unknown_fields() -> None:
    payload = data("voice-call-resource.json") | {"brand_new_field": 1, "duration": 15}
    call = CallResource.model_validate(payload)
    assert call.date_created == datetime(2026, 1, 6, 18, 30, tzinfo=timezone.utc)
    assert call.from_ == "+18005550100"
    assert call.duration == "15"
    assert call.to_wire()["from"] == "+18005550100"
    assert "brand_new_field" not in call.to_wire()


def test_call_resource_accepts_iso_dates() -> None:
    call = CallResource.model_validate({"sid": "CA1", "start_time": "2026-01-06T18:30:00Z"})
    assert call.start_time == datetime(2026, 1, 6, 18, 30, tzinfo=timezone.utc)


def test_execution_response_is_snake_case() -> None:
    execution = ExecutionResponse.model_validate(
        data("studio-execution-response.json") | {"extra": True}
    )
    assert execution.flow_sid == "FW8e0fcd6b1f6cf7103b4569cfc1593f53"
    assert execution.links is not None
    assert "steps" in execution.links


def test_knowledge_models_are_camel_case_and_lenient() -> None:
    base = KnowledgeBase.model_validate(data("knowledge-base-response.json") | {"new": 1})
    assert (base.display_name, base.version) == ("store-help-center", 2)
    chunk = KnowledgeChunkResult.model_validate(data("knowledge-search-response.json")["chunks"][1])
    assert (chunk.document_number, chunk.knowledge_id) == (
        4,
        "know_knowledge_0qxxwwhrm89fcnc65gwdcka41p",
    )
    source = Knowledge.model_validate({"id": "know_knowledge_1", "status": "COMPLETED"})
    assert source.status == "COMPLETED"


def test_knowledge_search_request_bounds() -> None:
    request = KnowledgeSearchRequest(query="q", top=3, knowledge_ids=["k"])
    assert request.to_wire() == {"query": "q", "top": 3, "knowledgeIds": ["k"]}
    with pytest.raises(ValueError, match="top"):
        KnowledgeSearchRequest(query="q", top=21)


async def test_debug_logs_have_no_secret_or_body(
    make_http: Callable[..., tuple[TwilioHTTP, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    answers = [httpx.Response(503), httpx.Response(200, json={"ok": True})]
    http, _ = make_http(lambda r: answers.pop(0))
    with caplog.at_level("DEBUG", logger="tac.context"):
        await http.request(
            "memory",
            "POST",
            "/v1/Stores/s/Profiles/Lookup",
            json={"idType": "phone", "value": "+14155550123"},
            params={"secretish": "q"},
        )
    text = caplog.text
    assert "POST memory/v1/Stores/s/Profiles/Lookup -> 503 (attempt 1" in text
    assert "-> 200 (attempt 2" in text
    assert "ms)" in text
    assert "retrying" in text
    for leaked in ("s3cret-value", "SKtestkey", "+14155550123", "secretish"):
        assert leaked not in text
