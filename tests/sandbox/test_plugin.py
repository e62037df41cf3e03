"""The pytest plugin's fixtures, as users get them."""

from typing import Any

import pytest

from tac.testing import Customer, Sandbox

pytestmark = pytest.mark.integration


@pytest.fixture
def sandbox_settings() -> dict[str, Any]:
    return {"app_url": "http://127.0.0.1:9/agent", "webhook_attempts": 1}


async def test_settings_fixture_configures_the_sandbox(sandbox: Sandbox) -> None:
    assert sandbox.settings.webhook_attempts == 1
    assert sandbox.env["TAC_PUBLIC_BASE_URL"] == "http://127.0.0.1:9/agent"
    policy = await sandbox.client.request("GET", "/sandbox/webhooks/policy")
    assert policy["attempts"] == 1


async def test_customer_fixture_belongs_to_the_sandbox(
    sandbox: Sandbox, customer: Customer
) -> None:
    assert customer.channel == "sms"
    sent = await customer.send("hi")
    (conversation,) = await sandbox.client.conversations()
    assert conversation["id"] == sent.conversation_id
    assert await sandbox.client.webhooks_idle()
    (gave_up, *_) = await sandbox.client.deliveries(outcome="gave_up")
    assert gave_up["url"] == "http://127.0.0.1:9/agent/webhook"


async def test_each_test_gets_a_fresh_sandbox(sandbox: Sandbox) -> None:
    assert await sandbox.client.conversations() == []
