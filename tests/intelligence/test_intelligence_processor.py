"""Conversation Intelligence: operator results → Memory summaries and observations.

Memory is a small fake ASGI app behind the real ``MemoryClient`` (the sandbox's Memory is
exercised in test_intelligence_webhook.py).
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tac import TAC, TACConfig
from tac.context import MemoryClient
from tac.context._http import RetryPolicy, TwilioHTTP
from tac.core.config import ConversationIntelligenceConfig
from tac.intelligence import (
    InvalidOperatorEventError,
    OperatorProcessingResult,
    OperatorResultProcessor,
)
from tac.state.memory import InMemorySessionStore
from tests._examples import example as load_example

pytestmark = pytest.mark.unit

STORE = "mem_store_11cnpejzxv90ee1fyqzenrjvbh"
PROFILE = "mem_profile_1rh5048d9qrfn67babyc2dpgcr"
CONV = "conv_conversation_0ap7mmmd7f0vf68q9wsz9z3h6d"
CONFIGURATION = "intelligence_configuration_1gtpbtfmw2fhvtmb80k2wd0x03"
SUMMARY_OPERATOR = "intelligence_operator_02cgxe6fx1anqgf6p2257mk2f7"
SUMMARY = (
    "Customer checked on order #4521; the agent confirmed it shipped Monday and arrives tomorrow."
)


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = load_example(f"intelligence-rule-execution-{name}.json")
    return data


class FakeMemory:
    """Records summary and observation writes; ``fail`` makes them answer 503."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, dict[str, Any]]] = []
        self.fail = False
        app = FastAPI()

        @app.post("/memory/v1/Stores/{store}/Profiles/{profile}/{kind}")
        async def write(store: str, profile: str, kind: str, request: Request) -> JSONResponse:
            if self.fail:
                return JSONResponse({"message": "unavailable"}, status_code=503)
            self.writes.append((f"{store}/{profile}/{kind}", await request.json()))
            return JSONResponse({"message": "accepted"}, status_code=202)

        self.transport = httpx.ASGITransport(app=app)

    def client(self) -> MemoryClient:
        http = TwilioHTTP(
            api_key="SK" + "1" * 32,
            api_secret="secret",
            account_sid="AC" + "0" * 32,
            api_base_url="http://twilio.test",
            transport=self.transport,
            retry=RetryPolicy(attempts=1),
        )
        return MemoryClient(store_id=STORE, http=http)


def processor(
    memory: FakeMemory, summary_operator: str | None = SUMMARY_OPERATOR, **kwargs: Any
) -> OperatorResultProcessor:
    config = ConversationIntelligenceConfig(
        configuration_id=CONFIGURATION, summary_operator_sid=summary_operator
    )
    return OperatorResultProcessor(memory.client(), config, **kwargs)


@pytest.mark.parametrize("name", ["summary", "summary-legacy-payload"])
async def test_summary_results_are_written_for_the_customer(name: str) -> None:
    memory = FakeMemory()
    result = await processor(memory).process_event(example(name))
    assert result == OperatorProcessingResult(
        success=True, event_type="summary", created_count=1, summaries_created=1
    )
    assert memory.writes == [
        (
            f"{STORE}/{PROFILE}/ConversationSummaries",
            {
                "summaries": [
                    {
                        "content": SUMMARY,
                        "conversationId": CONV,
                        "occurredAt": "2026-01-06T19:30:03Z",
                        "source": "conversation-intelligence",
                    }
                ]
            },
        )
    ]


async def test_without_a_summary_operator_the_shape_decides() -> None:
    memory = FakeMemory()
    result = await processor(memory, summary_operator=None).process_event(example("summary"))
    assert result.summaries_created == 1
    assert memory.writes[0][0].endswith("/ConversationSummaries")


async def test_other_operators_become_observations() -> None:
    memory = FakeMemory()
    result = await processor(memory).process_event(example("classification"))
    assert result.event_type == "observation"
    assert result.observations_created == 1
    path, body = memory.writes[0]
    assert path == f"{STORE}/{PROFILE}/Observations"
    assert body == {
        "observations": [
            {
                "content": "Classification: ORDER_STATUS",
                "source": "conversation-intelligence",
                "occurredAt": "2026-01-06T18:30:06Z",
                "conversationIds": [CONV],
            }
        ]
    }


async def test_json_with_summaries_and_observations_is_mixed() -> None:
    event = example("summary")
    event["operatorResults"][0]["operator"]["id"] = "intelligence_operator_other"
    event["operatorResults"][0]["result"] = {
        "summaries": [{"summary": "Asked about an order."}],
        "observations": ["Prefers SMS", {"observation": "Lives in Lima"}],
    }
    memory = FakeMemory()
    result = await processor(memory, summary_operator=None).process_event(event)
    assert result.event_type == "mixed"
    assert (result.summaries_created, result.observations_created) == (1, 2)
    contents = [o["content"] for o in memory.writes[1][1]["observations"]]
    assert contents == ["Prefers SMS", "Lives in Lima"]


async def test_extraction_and_text_results() -> None:
    event = example("classification")
    extraction = copy.deepcopy(event["operatorResults"][0])
    extraction.update(
        id="intelligence_operatorresult_x",
        outputFormat="EXTRACTION",
        result={"entities": [{"text": "#4521", "label": "order_number"}]},
    )
    text = copy.deepcopy(event["operatorResults"][0])
    text.update(id="intelligence_operatorresult_t", outputFormat="TEXT", result={"text": "VIP"})
    event["operatorResults"] = [extraction, text]
    memory = FakeMemory()
    result = await processor(memory).process_event(event)
    assert result.observations_created == 2
    assert [w[1]["observations"][0]["content"] for w in memory.writes] == [
        "order_number: #4521",
        "VIP",
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            lambda e: e["intelligenceConfiguration"].update(id="intelligence_configuration_other"),
            "configuration intelligence_configuration_other is not",
        ),
        (lambda e: e.update(memoryStoreId="mem_store_other"), "memory store mem_store_other"),
        (lambda e: e.update(operatorResults=[]), "no operator results"),
        (
            lambda e: e["operatorResults"][0]["executionDetails"].update(
                participants=[{"id": "p", "type": "AI_AGENT"}], resolvedContext=None
            ),
            "no customer profile",
        ),
        (
            lambda e: e["operatorResults"][0].update(result={"score": 3}),
            "no summary or observation",
        ),
    ],
)
async def test_skips_say_why(change: Any, reason: str) -> None:
    event = example("summary")
    change(event)
    memory = FakeMemory()
    result = await processor(memory).process_event(event)
    assert result.skipped
    assert result.success
    assert reason in (result.skip_reason or "")
    assert memory.writes == []


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ([], "the body must be a JSON object"),
        ({"conversationId": CONV, "operatorResults": []}, "intelligenceConfiguration"),
        (
            {
                "conversationId": CONV,
                "intelligenceConfiguration": {"id": CONFIGURATION},
                "operatorResults": [{"id": "r", "outputFormat": "JSON"}],
            },
            "operatorResults.0.operator",
        ),
    ],
)
async def test_malformed_events_name_the_field(payload: Any, where: str) -> None:
    with pytest.raises(InvalidOperatorEventError, match=where):
        await processor(FakeMemory()).process_event(payload)


async def test_memory_failure_is_reported_and_a_redelivery_writes_once() -> None:
    memory = FakeMemory()
    store = InMemorySessionStore()
    ci = processor(memory, session_store=store)
    memory.fail = True
    failed = await ci.process_event(example("summary"))
    assert not failed.success
    assert "ConversationSummaries -> 503" in (failed.error or "")
    memory.fail = False
    retried = await ci.process_event(example("summary"))
    assert retried.summaries_created == 1
    again = await ci.process_event(example("summary"))
    assert again.skipped
    assert "already processed" in (again.skip_reason or "")
    assert len(memory.writes) == 1


def _tac_config(**overrides: Any) -> TACConfig:
    values: dict[str, Any] = {
        "account_sid": "AC" + "0" * 32,
        "auth_token": "token",
        "api_key": "SK" + "1" * 32,
        "api_secret": "secret",
        "phone_number": "+15005550006",
        "conversation_configuration_id": "conv_configuration_x",
        "conversation_intelligence_config": {"configuration_id": CONFIGURATION},
    }
    values.update(overrides)
    return TACConfig(**values)


async def test_tac_builds_the_processor_only_when_configured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tac = TAC(_tac_config())
    assert isinstance(tac.ci_processor, OperatorResultProcessor)
    assert tac.ci_processor.session_store is tac.session_store
    await tac.aclose()
    plain = TAC(_tac_config(conversation_intelligence_config=None))
    assert plain.ci_processor is None
    with pytest.raises(ValueError, match="CONVERSATION_INTELLIGENCE_CONFIGURATION_ID"):
        await plain.process_cintel_event(example("summary"))
    await plain.aclose()
    relay_only = TAC(_tac_config(conversation_configuration_id=None))
    assert relay_only.ci_processor is None
    assert "Conversation Intelligence is off" in caplog.text
    await relay_only.aclose()
